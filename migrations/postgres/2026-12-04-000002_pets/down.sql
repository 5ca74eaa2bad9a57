DROP TABLE pet_items;
DROP TABLE pets;
