DROP TABLE password_clues;
DROP TABLE manual_productions;
DROP TABLE skill_level_rewards;
