//! The root query fields of every entity, declared from the tables' columns: each column can be
//! filtered on (by its kind) and ordered by. Regenerate when a table changes.

use crate::pipelines::cards::{CardCombo, CardComboCard};
use crate::pipelines::community::CommunityGoal;
use crate::pipelines::exchange::ExchangeOffer;
use crate::pipelines::gallery::ProfileBackground;
use crate::pipelines::item_pages::{ItemDetail, ItemSource};
use crate::pipelines::items::rows::{Item, LocksmithContent, RecipeIngredient, SeedCrop, WellOutput};
use crate::pipelines::locations::{Location, LocationDrop};
use crate::pipelines::npc_pages::NpcProfile;
use crate::pipelines::npcs::{Npc, NpcItem, NpcReward, NpcRewardItem};
use crate::pipelines::passwords::{Password, PasswordReward};
use crate::pipelines::tent::TentOffer;
use crate::pipelines::tower::{TowerLevel, TowerReward};
use crate::pipelines::updates::{GameUpdate, GameUpdateItem};

use super::lists::entity_root;

entity_root! {
    ItemQuery, Item, items,
    list items, one item,
    key (id: i64),
    filter ItemFilter {
        id: int,
        name: text,
        item_type: text,
        rarity: nullable_text,
        description: text,
        description_ext: nullable_text,
        image: text,
        farm_image: nullable_text,
        xp_value: int,
        buy_price: nullable_int,
        sell_price: nullable_int,
        craft_price: nullable_int,
        crafting_level: nullable_int,
        flea_market_price: nullable_int,
        flea_market_rotates: bool,
        tent_price: nullable_int,
        tent_rotates: bool,
        tent_max: nullable_int,
        black_market_price: nullable_int,
        soap_price: nullable_int,
        soap_rotates: bool,
        event_price: nullable_int,
        yield_minutes: nullable_int,
        yield_quantity: int,
        farming_level: int,
        can_cook: bool,
        cooking_level: nullable_int,
        cooking_recipe_id: nullable_int,
        drop_weight: int,
        runecube_weight: int,
        manual_fishing_only: bool,
        charter_drop: bool,
        openable: bool,
        random_contents: bool,
        loot_key_id: nullable_int,
        loot_gold: nullable_int,
        loot_shown: bool,
        void_bag: bool,
        void_bag_excluded: bool,
        active: bool,
        event_item: bool,
        givable: bool,
        mastery: bool,
        start_locked: bool,
        find_alert: bool,
        min_trade_level: int,
        min_send_level: int,
        min_receive_level: int,
        phr_excluded: bool,
        phr_limit: int,
        effect_minutes: nullable_int,
        effect_count: nullable_int,
        effect_type: nullable_text,
        effect_amount: nullable_int,
        date_added: nullable_text,
        mastery_count_1: int,
        mastery_count_2: int,
        mastery_count_3: int,
    },
    order ItemOrder / ItemOrderField {
        Id => id,
        Name => name,
        ItemType => item_type,
        Rarity => rarity,
        Description => description,
        DescriptionExt => description_ext,
        Image => image,
        FarmImage => farm_image,
        XpValue => xp_value,
        BuyPrice => buy_price,
        SellPrice => sell_price,
        CraftPrice => craft_price,
        CraftingLevel => crafting_level,
        FleaMarketPrice => flea_market_price,
        FleaMarketRotates => flea_market_rotates,
        TentPrice => tent_price,
        TentRotates => tent_rotates,
        TentMax => tent_max,
        BlackMarketPrice => black_market_price,
        SoapPrice => soap_price,
        SoapRotates => soap_rotates,
        EventPrice => event_price,
        YieldMinutes => yield_minutes,
        YieldQuantity => yield_quantity,
        FarmingLevel => farming_level,
        CanCook => can_cook,
        CookingLevel => cooking_level,
        CookingRecipeId => cooking_recipe_id,
        DropWeight => drop_weight,
        RunecubeWeight => runecube_weight,
        ManualFishingOnly => manual_fishing_only,
        CharterDrop => charter_drop,
        Openable => openable,
        RandomContents => random_contents,
        LootKeyId => loot_key_id,
        LootGold => loot_gold,
        LootShown => loot_shown,
        VoidBag => void_bag,
        VoidBagExcluded => void_bag_excluded,
        Active => active,
        EventItem => event_item,
        Givable => givable,
        Mastery => mastery,
        StartLocked => start_locked,
        FindAlert => find_alert,
        MinTradeLevel => min_trade_level,
        MinSendLevel => min_send_level,
        MinReceiveLevel => min_receive_level,
        PhrExcluded => phr_excluded,
        PhrLimit => phr_limit,
        EffectMinutes => effect_minutes,
        EffectCount => effect_count,
        EffectType => effect_type,
        EffectAmount => effect_amount,
        DateAdded => date_added,
        MasteryCount1 => mastery_count_1,
        MasteryCount2 => mastery_count_2,
        MasteryCount3 => mastery_count_3,
    },
}

entity_root! {
    RecipeIngredientQuery, RecipeIngredient, recipe_ingredients,
    list recipe_ingredients, one recipe_ingredient,
    key (item_id: i64, ingredient_id: i64),
    filter RecipeIngredientFilter {
        item_id: int,
        ingredient_id: int,
        quantity: int,
        kind: text,
    },
    order RecipeIngredientOrder / RecipeIngredientOrderField {
        ItemId => item_id,
        IngredientId => ingredient_id,
        Quantity => quantity,
        Kind => kind,
    },
}

entity_root! {
    LocksmithContentQuery, LocksmithContent, locksmith_contents,
    list locksmith_contents, one locksmith_content,
    key (container_id: i64, item_id: i64),
    filter LocksmithContentFilter {
        container_id: int,
        item_id: int,
        quantity_min: int,
        quantity_max: int,
    },
    order LocksmithContentOrder / LocksmithContentOrderField {
        ContainerId => container_id,
        ItemId => item_id,
        QuantityMin => quantity_min,
        QuantityMax => quantity_max,
    },
}

entity_root! {
    SeedCropQuery, SeedCrop, seed_crops,
    list seed_crops, one seed_crop,
    key (seed_id: i64, crop_id: i64),
    filter SeedCropFilter {
        seed_id: int,
        crop_id: int,
    },
    order SeedCropOrder / SeedCropOrderField {
        SeedId => seed_id,
        CropId => crop_id,
    },
}

entity_root! {
    WellOutputQuery, WellOutput, wishing_well_outputs,
    list well_outputs, one well_output,
    key (item_id: i64, output_id: i64),
    filter WellOutputFilter {
        item_id: int,
        output_id: int,
    },
    order WellOutputOrder / WellOutputOrderField {
        ItemId => item_id,
        OutputId => output_id,
    },
}

entity_root! {
    NpcQuery, Npc, npcs,
    list npcs, one npc,
    key (id: i64),
    filter NpcFilter {
        id: int,
        user_id: int,
        name: text,
        image: text,
        image_halloween: nullable_text,
        image_christmas: nullable_text,
        explore_location_id: nullable_int,
        friendship: bool,
    },
    order NpcOrder / NpcOrderField {
        Id => id,
        UserId => user_id,
        Name => name,
        Image => image,
        ImageHalloween => image_halloween,
        ImageChristmas => image_christmas,
        ExploreLocationId => explore_location_id,
        Friendship => friendship,
    },
}

entity_root! {
    NpcItemQuery, NpcItem, npc_items,
    list npc_items, one npc_item,
    key (npc_id: i64, relation: String, item_id: i64),
    filter NpcItemFilter {
        npc_id: int,
        relation: text,
        item_id: int,
    },
    order NpcItemOrder / NpcItemOrderField {
        NpcId => npc_id,
        Relation => relation,
        ItemId => item_id,
    },
}

entity_root! {
    NpcRewardQuery, NpcReward, npc_rewards,
    list npc_rewards, one npc_reward,
    key (id: i64),
    filter NpcRewardFilter {
        id: int,
        npc_id: nullable_int,
        npc_name: text,
        level: int,
        silver: nullable_int,
        gold: nullable_int,
    },
    order NpcRewardOrder / NpcRewardOrderField {
        Id => id,
        NpcId => npc_id,
        NpcName => npc_name,
        Level => level,
        Silver => silver,
        Gold => gold,
    },
}

entity_root! {
    NpcRewardItemQuery, NpcRewardItem, npc_reward_items,
    list npc_reward_items, one npc_reward_item,
    key (reward_id: i64, slot: i64),
    filter NpcRewardItemFilter {
        reward_id: int,
        slot: int,
        item_id: int,
        quantity: int,
    },
    order NpcRewardItemOrder / NpcRewardItemOrderField {
        RewardId => reward_id,
        Slot => slot,
        ItemId => item_id,
        Quantity => quantity,
    },
}

entity_root! {
    NpcProfileQuery, NpcProfile, npc_profiles,
    list npc_profiles, one npc_profile,
    key (user_id: i64),
    filter NpcProfileFilter {
        user_id: int,
        npc_id: nullable_int,
        name: text,
        zone: nullable_text,
        staff_image: nullable_text,
        friendship_level: nullable_int,
        friendship_progress: nullable_float,
        townsfolk_of_the_day: bool,
        staff_stat_1: nullable_int,
        staff_stat_2: nullable_int,
        staff_stat_3: nullable_int,
        staff_stat_4: nullable_int,
    },
    order NpcProfileOrder / NpcProfileOrderField {
        UserId => user_id,
        NpcId => npc_id,
        Name => name,
        Zone => zone,
        StaffImage => staff_image,
        FriendshipLevel => friendship_level,
        FriendshipProgress => friendship_progress,
        TownsfolkOfTheDay => townsfolk_of_the_day,
        StaffStat1 => staff_stat_1,
        StaffStat2 => staff_stat_2,
        StaffStat3 => staff_stat_3,
        StaffStat4 => staff_stat_4,
    },
}

entity_root! {
    TowerLevelQuery, TowerLevel, tower_levels,
    list tower_levels, one tower_level,
    key (level: i64),
    filter TowerLevelFilter {
        level: int,
        silver: nullable_int,
        gold: nullable_int,
        mm_item_1: nullable_int,
        mm_item_2: nullable_int,
        mm_item_3: nullable_int,
    },
    order TowerLevelOrder / TowerLevelOrderField {
        Level => level,
        Silver => silver,
        Gold => gold,
        MmItem1 => mm_item_1,
        MmItem2 => mm_item_2,
        MmItem3 => mm_item_3,
    },
}

entity_root! {
    TowerRewardQuery, TowerReward, tower_rewards,
    list tower_rewards, one tower_reward,
    key (level: i64, slot: i64),
    filter TowerRewardFilter {
        level: int,
        slot: int,
        item_id: int,
        quantity: int,
    },
    order TowerRewardOrder / TowerRewardOrderField {
        Level => level,
        Slot => slot,
        ItemId => item_id,
        Quantity => quantity,
    },
}

entity_root! {
    LocationQuery, Location, locations,
    list locations, one location,
    key (location_type: String, id: i64),
    filter LocationFilter {
        location_type: text,
        id: int,
        name: text,
        subtitle: nullable_text,
        image: nullable_text,
    },
    order LocationOrder / LocationOrderField {
        LocationType => location_type,
        Id => id,
        Name => name,
        Subtitle => subtitle,
        Image => image,
    },
}

entity_root! {
    LocationDropQuery, LocationDrop, location_drops,
    list location_drops, one location_drop,
    key (location_type: String, location_id: i64, item_id: i64),
    filter LocationDropFilter {
        location_type: text,
        location_id: int,
        item_id: int,
    },
    order LocationDropOrder / LocationDropOrderField {
        LocationType => location_type,
        LocationId => location_id,
        ItemId => item_id,
    },
}

entity_root! {
    CommunityGoalQuery, CommunityGoal, community_goals,
    list community_goals, one community_goal,
    key (goal_date: String),
    filter CommunityGoalFilter {
        goal_date: text,
        goal_item_id: nullable_int,
        goal_item_name: text,
        goal_quantity: int,
        reward_item_id: nullable_int,
        reward_item_name: text,
        reward_quantity: int,
        progress: nullable_int,
        progress_percent: nullable_float,
    },
    order CommunityGoalOrder / CommunityGoalOrderField {
        GoalDate => goal_date,
        GoalItemId => goal_item_id,
        GoalItemName => goal_item_name,
        GoalQuantity => goal_quantity,
        RewardItemId => reward_item_id,
        RewardItemName => reward_item_name,
        RewardQuantity => reward_quantity,
        Progress => progress,
        ProgressPercent => progress_percent,
    },
}

entity_root! {
    ExchangeOfferQuery, ExchangeOffer, exchange_offers,
    list exchange_offers, one exchange_offer,
    key (give_item_id: i64, give_quantity: i64, receive_item_id: i64, receive_quantity: i64),
    filter ExchangeOfferFilter {
        give_item_id: int,
        give_quantity: int,
        receive_item_id: int,
        receive_quantity: int,
        give_item_name: text,
        receive_item_name: text,
        one_shot: bool,
        trade_id: nullable_int,
        first_seen: text,
        last_seen: text,
    },
    order ExchangeOfferOrder / ExchangeOfferOrderField {
        GiveItemId => give_item_id,
        GiveQuantity => give_quantity,
        ReceiveItemId => receive_item_id,
        ReceiveQuantity => receive_quantity,
        GiveItemName => give_item_name,
        ReceiveItemName => receive_item_name,
        OneShot => one_shot,
        TradeId => trade_id,
        FirstSeen => first_seen,
        LastSeen => last_seen,
    },
}

entity_root! {
    CardComboQuery, CardCombo, card_combos,
    list card_combos, one card_combo,
    key (id: i64),
    filter CardComboFilter {
        id: int,
        reward_item_id: nullable_int,
        reward_item_name: text,
        reward_quantity: int,
        times_turned_in: int,
    },
    order CardComboOrder / CardComboOrderField {
        Id => id,
        RewardItemId => reward_item_id,
        RewardItemName => reward_item_name,
        RewardQuantity => reward_quantity,
        TimesTurnedIn => times_turned_in,
    },
}

entity_root! {
    CardComboCardQuery, CardComboCard, card_combo_cards,
    list card_combo_cards, one card_combo_card,
    key (combo_id: i64, suit: String),
    filter CardComboCardFilter {
        combo_id: int,
        suit: text,
        quantity: int,
    },
    order CardComboCardOrder / CardComboCardOrderField {
        ComboId => combo_id,
        Suit => suit,
        Quantity => quantity,
    },
}

entity_root! {
    TentOfferQuery, TentOffer, tent_offers,
    list tent_offers, one tent_offer,
    key (week: String, item_id: i64),
    filter TentOfferFilter {
        week: text,
        item_id: int,
        item_name: text,
        price: nullable_int,
    },
    order TentOfferOrder / TentOfferOrderField {
        Week => week,
        ItemId => item_id,
        ItemName => item_name,
        Price => price,
    },
}

entity_root! {
    GameUpdateQuery, GameUpdate, game_updates,
    list game_updates, one game_update,
    key (id: i64),
    filter GameUpdateFilter {
        id: int,
        posted_on: text,
        text: text,
        html: text,
    },
    order GameUpdateOrder / GameUpdateOrderField {
        Id => id,
        PostedOn => posted_on,
        Text => text,
        Html => html,
    },
}

entity_root! {
    GameUpdateItemQuery, GameUpdateItem, game_update_items,
    list game_update_items, one game_update_item,
    key (update_id: i64, item_id: i64),
    filter GameUpdateItemFilter {
        update_id: int,
        item_id: int,
    },
    order GameUpdateItemOrder / GameUpdateItemOrderField {
        UpdateId => update_id,
        ItemId => item_id,
    },
}

entity_root! {
    PasswordQuery, Password, passwords,
    list passwords, one password,
    key (password: String),
    filter PasswordFilter {
        password: text,
        redeemed_at: nullable_text,
    },
    order PasswordOrder / PasswordOrderField {
        Password => password,
        RedeemedAt => redeemed_at,
    },
}

entity_root! {
    PasswordRewardQuery, PasswordReward, password_rewards,
    list password_rewards, one password_reward,
    key (password: String, slot: i64),
    filter PasswordRewardFilter {
        password: text,
        slot: int,
        kind: text,
        item_id: nullable_int,
        item_name: text,
        quantity: int,
    },
    order PasswordRewardOrder / PasswordRewardOrderField {
        Password => password,
        Slot => slot,
        Kind => kind,
        ItemId => item_id,
        ItemName => item_name,
        Quantity => quantity,
    },
}

entity_root! {
    ProfileBackgroundQuery, ProfileBackground, profile_backgrounds,
    list profile_backgrounds, one profile_background,
    key (name: String),
    filter ProfileBackgroundFilter {
        name: text,
        background_id: nullable_int,
        image: text,
        players_unlocked: nullable_int,
        cost_kind: nullable_text,
        cost_item_id: nullable_int,
        cost_item_name: nullable_text,
        cost_quantity: nullable_int,
    },
    order ProfileBackgroundOrder / ProfileBackgroundOrderField {
        Name => name,
        BackgroundId => background_id,
        Image => image,
        PlayersUnlocked => players_unlocked,
        CostKind => cost_kind,
        CostItemId => cost_item_id,
        CostItemName => cost_item_name,
        CostQuantity => cost_quantity,
    },
}

entity_root! {
    ItemDetailQuery, ItemDetail, item_details,
    list item_details, one item_detail,
    key (item_id: i64),
    filter ItemDetailFilter {
        item_id: int,
        name: text,
        rarity: nullable_text,
        xp_value: nullable_int,
        flea_market_gold: nullable_int,
        contents_gold: nullable_int,
    },
    order ItemDetailOrder / ItemDetailOrderField {
        ItemId => item_id,
        Name => name,
        Rarity => rarity,
        XpValue => xp_value,
        FleaMarketGold => flea_market_gold,
        ContentsGold => contents_gold,
    },
}

entity_root! {
    ItemSourceQuery, ItemSource, item_sources,
    list item_sources, one item_source,
    key (item_id: i64, activity: String, location_type: String, location_id: i64),
    filter ItemSourceFilter {
        item_id: int,
        activity: text,
        location_type: text,
        location_id: int,
    },
    order ItemSourceOrder / ItemSourceOrderField {
        ItemId => item_id,
        Activity => activity,
        LocationType => location_type,
        LocationId => location_id,
    },
}

/// Every entity's root fields in one query type.
#[derive(async_graphql::MergedObject, Default)]
pub struct EntityQuery(
    ItemQuery,
    RecipeIngredientQuery,
    LocksmithContentQuery,
    SeedCropQuery,
    WellOutputQuery,
    NpcQuery,
    NpcItemQuery,
    NpcRewardQuery,
    NpcRewardItemQuery,
    NpcProfileQuery,
    TowerLevelQuery,
    TowerRewardQuery,
    LocationQuery,
    LocationDropQuery,
    CommunityGoalQuery,
    ExchangeOfferQuery,
    CardComboQuery,
    CardComboCardQuery,
    TentOfferQuery,
    GameUpdateQuery,
    GameUpdateItemQuery,
    PasswordQuery,
    PasswordRewardQuery,
    ProfileBackgroundQuery,
    ItemDetailQuery,
    ItemSourceQuery,
);
