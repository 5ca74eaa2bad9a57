DROP TABLE quest_reward_items;
DROP TABLE quest_required_items;
DROP TABLE questlines;
DROP TABLE quests;
