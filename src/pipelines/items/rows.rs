//! The stored rows of the items pipeline (tables `items`, `recipe_ingredients`,
//! `locksmith_contents`, `seed_crops`, `wishing_well_outputs`) and their GraphQL entities, loaded
//! by the generic table loader. Items reference items (`cooking_recipe_id`, `loot_key_id`), so
//! they are written in the order [`super::load::insertion_order`] gives.

use diesel::{Insertable, Queryable, Selectable};
use serde::Serialize;

use crate::front_doors::graphql::entity::entity;
use crate::pipelines::shared::table::stored_table;

entity! {
    #[diesel(table_name = items)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct Item {
        pub id: i64,
        pub name: String,
        pub item_type: String,
        pub rarity: Option<String>,
        pub description: String,
        pub description_ext: Option<String>,
        pub image: String,
        pub farm_image: Option<String>,
        pub xp_value: i64,
        pub buy_price: Option<i64>,
        /// What the game pays for one, as upstream gives it, whether or not it can be sold now
        /// (see `can_sell`).
        pub sell_price: Option<i64>,
        /// Whether the game buys this item from players.
        pub can_sell: bool,
        pub craft_price: Option<i64>,
        pub crafting_level: Option<i64>,
        pub flea_market_price: Option<i64>,
        pub flea_market_rotates: bool,
        pub tent_price: Option<i64>,
        pub tent_rotates: bool,
        pub tent_max: Option<i64>,
        pub black_market_price: Option<i64>,
        pub soap_price: Option<i64>,
        pub soap_rotates: bool,
        pub event_price: Option<i64>,
        pub yield_minutes: Option<i64>,
        pub yield_quantity: i64,
        pub farming_level: i64,
        pub can_cook: bool,
        pub cooking_level: Option<i64>,
        pub cooking_recipe_id: Option<i64>,
        pub drop_weight: i64,
        pub runecube_weight: i64,
        pub manual_fishing_only: bool,
        pub charter_drop: bool,
        pub openable: bool,
        pub random_contents: bool,
        pub loot_key_id: Option<i64>,
        pub loot_gold: Option<i64>,
        pub loot_shown: bool,
        pub void_bag: bool,
        pub void_bag_excluded: bool,
        pub active: bool,
        pub event_item: bool,
        pub givable: bool,
        pub mastery: bool,
        pub start_locked: bool,
        pub find_alert: bool,
        pub min_trade_level: i64,
        pub min_send_level: i64,
        pub min_receive_level: i64,
        pub phr_excluded: bool,
        pub phr_limit: i64,
        pub effect_minutes: Option<i64>,
        pub effect_count: Option<i64>,
        pub effect_type: Option<String>,
        pub effect_amount: Option<i64>,
        /// `YYYY-MM-DD`; `None` where the API says `0000-00-00`.
        pub date_added: Option<String>,
        pub mastery_count_1: i64,
        pub mastery_count_2: i64,
        pub mastery_count_3: i64,
    }
    key (id);
    roots (items, item);
    relations {
        /// What this item is crafted or cooked from.
        recipe_ingredients: many recipe_ingredients.item_id = id;
        /// Recipes this item is an ingredient of.
        ingredient_of: many recipe_ingredients.ingredient_id = id;
        /// The recipe item that teaches cooking this dish.
        cooking_recipe: one items.id = cooking_recipe_id;
        /// The dishes this recipe item teaches.
        teaches: many items.cooking_recipe_id = id;
        /// The key that opens this chest.
        loot_key: one items.id = loot_key_id;
        /// The chests this key opens.
        opens: many items.loot_key_id = id;
        /// What this openable contains (locksmith).
        contents: many locksmith_contents.container_id = id;
        /// The openables that contain this item.
        contained_in: many locksmith_contents.item_id = id;
        /// Crops this seed can grow.
        crops: many seed_crops.seed_id = id;
        /// Seeds that grow this crop.
        grown_from: many seed_crops.crop_id = id;
        /// What the wishing well gives for this item.
        well_outputs: many wishing_well_outputs.item_id = id;
        /// Items the wishing well turns into this one.
        well_inputs: many wishing_well_outputs.output_id = id;
    }
}

stored_table!(
    Item,
    items,
    "item",
    key(id),
    update(
        name, item_type, rarity, description, description_ext, image, farm_image, xp_value, buy_price, sell_price,
        can_sell,
        craft_price, crafting_level, flea_market_price, flea_market_rotates, tent_price, tent_rotates, tent_max,
        black_market_price, soap_price, soap_rotates, event_price, yield_minutes, yield_quantity, farming_level,
        can_cook, cooking_level, cooking_recipe_id, drop_weight, runecube_weight, manual_fishing_only, charter_drop,
        openable, random_contents, loot_key_id, loot_gold, loot_shown, void_bag, void_bag_excluded, active,
        event_item, givable, mastery, start_locked, find_alert, min_trade_level, min_send_level, min_receive_level,
        phr_excluded, phr_limit, effect_minutes, effect_count, effect_type, effect_amount, date_added,
        mastery_count_1, mastery_count_2, mastery_count_3
    ),
    label name,
    order super::load::insertion_order
);

impl Item {
    /// Items this row points at, which must exist before it (self references).
    pub fn references(&self) -> impl Iterator<Item = i64> {
        self.cooking_recipe_id.into_iter().chain(self.loot_key_id)
    }
}

entity! {
    #[diesel(table_name = recipe_ingredients)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct RecipeIngredient {
        pub item_id: i64,
        pub ingredient_id: i64,
        pub quantity: i64,
        /// `crafting` or `cooking`.
        pub kind: String,
    }
    key (item_id, ingredient_id);
    roots (recipe_ingredients, recipe_ingredient);
    relations {
        /// The item made.
        item: one items.id = item_id;
        /// The ingredient.
        ingredient: one items.id = ingredient_id;
    }
}
stored_table!(
    RecipeIngredient,
    recipe_ingredients,
    "recipe_ingredient",
    key(item_id, ingredient_id),
    update(quantity, kind)
);

entity! {
    #[diesel(table_name = locksmith_contents)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct LocksmithContent {
        pub container_id: i64,
        pub item_id: i64,
        pub quantity_min: i64,
        pub quantity_max: i64,
    }
    key (container_id, item_id);
    roots (locksmith_contents, locksmith_content);
    relations {
        container: one items.id = container_id;
        item: one items.id = item_id;
    }
}
stored_table!(
    LocksmithContent,
    locksmith_contents,
    "locksmith_content",
    key(container_id, item_id),
    update(quantity_min, quantity_max)
);

entity! {
    #[diesel(table_name = seed_crops)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct SeedCrop {
        pub seed_id: i64,
        pub crop_id: i64,
    }
    key (seed_id, crop_id);
    roots (seed_crops, seed_crop);
    relations {
        seed: one items.id = seed_id;
        crop: one items.id = crop_id;
    }
}
stored_table!(SeedCrop, seed_crops, "seed_crop", key(seed_id, crop_id), update());

entity! {
    #[diesel(table_name = wishing_well_outputs)]
    #[derive(Debug, Clone, PartialEq, Serialize, Queryable, Selectable, Insertable)]
    #[diesel(treat_none_as_default_value = false)]
    pub struct WellOutput {
        pub item_id: i64,
        pub output_id: i64,
    }
    key (item_id, output_id);
    roots (well_outputs, well_output);
    relations {
        item: one items.id = item_id;
        output: one items.id = output_id;
    }
}
stored_table!(WellOutput, wishing_well_outputs, "wishing_well_output", key(item_id, output_id), update());
