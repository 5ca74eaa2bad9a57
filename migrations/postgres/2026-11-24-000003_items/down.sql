DROP TABLE wishing_well_outputs;
DROP TABLE seed_crops;
DROP TABLE locksmith_contents;
DROP TABLE recipe_ingredients;
DROP TABLE items;
DROP TABLE source_fingerprints;
ALTER TABLE runs DROP COLUMN notes;
