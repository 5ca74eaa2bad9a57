// @generated automatically by Diesel CLI.

diesel::table! {
    card_combo_cards (combo_id, suit) {
        combo_id -> BigInt,
        suit -> Text,
        quantity -> BigInt,
    }
}

diesel::table! {
    card_combos (id) {
        id -> BigInt,
        reward_item_id -> Nullable<BigInt>,
        reward_item_name -> Text,
        reward_quantity -> BigInt,
        times_turned_in -> BigInt,
    }
}

diesel::table! {
    change_events (id) {
        id -> BigInt,
        run_id -> BigInt,
        entity -> Text,
        entity_key -> Text,
        op -> Text,
        fields -> Text,
        recorded_at -> Timestamp,
        label -> Nullable<Text>,
    }
}

diesel::table! {
    community_goals (goal_date) {
        goal_date -> Text,
        goal_item_id -> Nullable<BigInt>,
        goal_item_name -> Text,
        goal_quantity -> BigInt,
        reward_item_id -> Nullable<BigInt>,
        reward_item_name -> Text,
        reward_quantity -> BigInt,
        progress -> Nullable<BigInt>,
        progress_percent -> Nullable<Double>,
    }
}

diesel::table! {
    demo_records (id) {
        id -> BigInt,
        name -> Text,
        value -> BigInt,
    }
}

diesel::table! {
    exchange_offers (give_item_id, give_quantity, receive_item_id, receive_quantity) {
        give_item_id -> BigInt,
        give_quantity -> BigInt,
        receive_item_id -> BigInt,
        receive_quantity -> BigInt,
        give_item_name -> Text,
        receive_item_name -> Text,
        one_shot -> Bool,
        trade_id -> Nullable<BigInt>,
        first_seen -> Text,
        last_seen -> Text,
    }
}

diesel::table! {
    fan_out_tasks (id) {
        id -> BigInt,
        run_id -> BigInt,
        pipeline -> Text,
        request -> Text,
        status -> Text,
        owner -> Nullable<Text>,
        lease_until -> Nullable<Timestamp>,
        attempt -> Integer,
        error -> Nullable<Text>,
        inserted -> BigInt,
        updated -> BigInt,
        deleted -> BigInt,
        unchanged -> BigInt,
        notes -> Nullable<Text>,
    }
}

diesel::table! {
    game_update_items (update_id, item_id) {
        update_id -> BigInt,
        item_id -> BigInt,
    }
}

diesel::table! {
    game_updates (id) {
        id -> BigInt,
        posted_on -> Text,
        text -> Text,
        html -> Text,
    }
}

diesel::table! {
    item_details (item_id) {
        item_id -> BigInt,
        name -> Text,
        rarity -> Nullable<Text>,
        xp_value -> Nullable<BigInt>,
        flea_market_gold -> Nullable<BigInt>,
        contents_gold -> Nullable<BigInt>,
    }
}

diesel::table! {
    item_sources (item_id, activity, location_type, location_id) {
        item_id -> BigInt,
        activity -> Text,
        location_type -> Text,
        location_id -> BigInt,
    }
}

diesel::table! {
    items (id) {
        id -> BigInt,
        name -> Text,
        item_type -> Text,
        rarity -> Nullable<Text>,
        description -> Text,
        description_ext -> Nullable<Text>,
        image -> Text,
        farm_image -> Nullable<Text>,
        xp_value -> BigInt,
        buy_price -> Nullable<BigInt>,
        sell_price -> Nullable<BigInt>,
        craft_price -> Nullable<BigInt>,
        crafting_level -> Nullable<BigInt>,
        flea_market_price -> Nullable<BigInt>,
        flea_market_rotates -> Bool,
        tent_price -> Nullable<BigInt>,
        tent_rotates -> Bool,
        tent_max -> Nullable<BigInt>,
        black_market_price -> Nullable<BigInt>,
        soap_price -> Nullable<BigInt>,
        soap_rotates -> Bool,
        event_price -> Nullable<BigInt>,
        yield_minutes -> Nullable<BigInt>,
        yield_quantity -> BigInt,
        farming_level -> BigInt,
        can_cook -> Bool,
        cooking_level -> Nullable<BigInt>,
        cooking_recipe_id -> Nullable<BigInt>,
        drop_weight -> BigInt,
        runecube_weight -> BigInt,
        manual_fishing_only -> Bool,
        charter_drop -> Bool,
        openable -> Bool,
        random_contents -> Bool,
        loot_key_id -> Nullable<BigInt>,
        loot_gold -> Nullable<BigInt>,
        loot_shown -> Bool,
        void_bag -> Bool,
        void_bag_excluded -> Bool,
        active -> Bool,
        event_item -> Bool,
        givable -> Bool,
        mastery -> Bool,
        start_locked -> Bool,
        find_alert -> Bool,
        min_trade_level -> BigInt,
        min_send_level -> BigInt,
        min_receive_level -> BigInt,
        phr_excluded -> Bool,
        phr_limit -> BigInt,
        effect_minutes -> Nullable<BigInt>,
        effect_count -> Nullable<BigInt>,
        effect_type -> Nullable<Text>,
        effect_amount -> Nullable<BigInt>,
        date_added -> Nullable<Text>,
        mastery_count_1 -> BigInt,
        mastery_count_2 -> BigInt,
        mastery_count_3 -> BigInt,
        can_sell -> Bool,
    }
}

diesel::table! {
    location_drops (location_type, location_id, item_id) {
        location_type -> Text,
        location_id -> BigInt,
        item_id -> BigInt,
    }
}

diesel::table! {
    locations (location_type, id) {
        location_type -> Text,
        id -> BigInt,
        name -> Text,
        subtitle -> Nullable<Text>,
        image -> Nullable<Text>,
    }
}

diesel::table! {
    locksmith_contents (container_id, item_id) {
        container_id -> BigInt,
        item_id -> BigInt,
        quantity_min -> BigInt,
        quantity_max -> BigInt,
    }
}

diesel::table! {
    manual_productions (id) {
        id -> BigInt,
        item_id -> BigInt,
        line_one -> Text,
        line_two -> Text,
        image -> Text,
        rate -> Text,
        sort -> BigInt,
    }
}

diesel::table! {
    nodes (id) {
        id -> Text,
        host -> Text,
        pid -> BigInt,
        version -> Text,
        started_at -> Timestamp,
        heartbeat_at -> Timestamp,
        left_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    npc_items (npc_id, relation, item_id) {
        npc_id -> BigInt,
        relation -> Text,
        item_id -> BigInt,
    }
}

diesel::table! {
    npc_profiles (user_id) {
        user_id -> BigInt,
        npc_id -> Nullable<BigInt>,
        name -> Text,
        zone -> Nullable<Text>,
        staff_image -> Nullable<Text>,
        friendship_level -> Nullable<BigInt>,
        friendship_progress -> Nullable<Double>,
        townsfolk_of_the_day -> Bool,
        staff_stat_1 -> Nullable<BigInt>,
        staff_stat_2 -> Nullable<BigInt>,
        staff_stat_3 -> Nullable<BigInt>,
        staff_stat_4 -> Nullable<BigInt>,
    }
}

diesel::table! {
    npc_reward_items (reward_id, slot) {
        reward_id -> BigInt,
        slot -> BigInt,
        item_id -> BigInt,
        quantity -> BigInt,
    }
}

diesel::table! {
    npc_rewards (id) {
        id -> BigInt,
        npc_id -> Nullable<BigInt>,
        npc_name -> Text,
        level -> BigInt,
        silver -> Nullable<BigInt>,
        gold -> Nullable<BigInt>,
    }
}

diesel::table! {
    npcs (id) {
        id -> BigInt,
        user_id -> BigInt,
        name -> Text,
        image -> Text,
        image_halloween -> Nullable<Text>,
        image_christmas -> Nullable<Text>,
        explore_location_id -> Nullable<BigInt>,
        friendship -> Bool,
    }
}

diesel::table! {
    outbox (id) {
        id -> BigInt,
        channel -> Text,
        payload -> Text,
        run_id -> Nullable<BigInt>,
        created_at -> Timestamp,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    page_fingerprints (pipeline, request) {
        pipeline -> Text,
        request -> Text,
        fingerprint -> Text,
        loaded_at -> Timestamp,
    }
}

diesel::table! {
    password_clues (password) {
        password -> Text,
        event -> Text,
        clue1 -> Text,
        clue2 -> Text,
        clue3 -> Text,
    }
}

diesel::table! {
    password_rewards (password, slot) {
        password -> Text,
        slot -> BigInt,
        kind -> Text,
        item_id -> Nullable<BigInt>,
        item_name -> Text,
        quantity -> BigInt,
    }
}

diesel::table! {
    passwords (password) {
        password -> Text,
        redeemed_at -> Nullable<Text>,
    }
}

diesel::table! {
    pet_items (pet_id, level, item_id) {
        pet_id -> BigInt,
        level -> BigInt,
        item_id -> BigInt,
        position -> BigInt,
    }
}

diesel::table! {
    pets (id) {
        id -> BigInt,
        name -> Text,
        description -> Text,
        image -> Text,
        cost -> BigInt,
        display_order -> BigInt,
        required_farming_level -> BigInt,
        required_fishing_level -> BigInt,
        required_crafting_level -> BigInt,
        required_exploring_level -> BigInt,
        required_cooking_level -> BigInt,
    }
}

diesel::table! {
    pipelines (name) {
        name -> Text,
        schedule -> Text,
        enabled -> Bool,
        registered_at -> Timestamp,
    }
}

diesel::table! {
    profile_backgrounds (name) {
        name -> Text,
        background_id -> Nullable<BigInt>,
        image -> Text,
        players_unlocked -> Nullable<BigInt>,
        cost_kind -> Nullable<Text>,
        cost_item_id -> Nullable<BigInt>,
        cost_item_name -> Nullable<Text>,
        cost_quantity -> Nullable<BigInt>,
    }
}

diesel::table! {
    quest_required_items (quest_id, slot) {
        quest_id -> BigInt,
        slot -> BigInt,
        item_id -> BigInt,
        quantity -> BigInt,
    }
}

diesel::table! {
    quest_reward_items (quest_id, slot) {
        quest_id -> BigInt,
        slot -> BigInt,
        item_id -> BigInt,
        quantity -> BigInt,
    }
}

diesel::table! {
    questlines (name) {
        name -> Text,
        step_count -> BigInt,
        first_quest_id -> BigInt,
    }
}

diesel::table! {
    quests (id) {
        id -> BigInt,
        title -> Text,
        npc_name -> Text,
        npc_id -> Nullable<BigInt>,
        image -> Nullable<Text>,
        author -> Nullable<Text>,
        predecessor_id -> Nullable<BigInt>,
        main_quest -> Bool,
        start_date -> Nullable<Text>,
        end_date -> Nullable<Text>,
        starts_at -> Nullable<Text>,
        ends_at -> Nullable<Text>,
        questline -> Nullable<Text>,
        questline_step -> Nullable<BigInt>,
        questline_part -> Nullable<Text>,
        text -> Text,
        html -> Text,
        reward_silver -> BigInt,
        reward_gold -> BigInt,
        required_silver -> BigInt,
        required_npc_id -> Nullable<BigInt>,
        required_npc_level -> BigInt,
        required_farming_level -> BigInt,
        required_fishing_level -> BigInt,
        required_crafting_level -> BigInt,
        required_exploring_level -> BigInt,
        required_cooking_level -> BigInt,
        required_tower_level -> BigInt,
        completed_count -> BigInt,
    }
}

diesel::table! {
    recipe_ingredients (item_id, ingredient_id) {
        item_id -> BigInt,
        ingredient_id -> BigInt,
        quantity -> BigInt,
        kind -> Text,
    }
}

diesel::table! {
    runs (id) {
        id -> BigInt,
        pipeline -> Text,
        status -> Text,
        trigger -> Text,
        attempt -> Integer,
        owner -> Nullable<Text>,
        queued_at -> Timestamp,
        started_at -> Nullable<Timestamp>,
        finished_at -> Nullable<Timestamp>,
        lease_until -> Nullable<Timestamp>,
        inserted -> BigInt,
        updated -> BigInt,
        deleted -> BigInt,
        unchanged -> BigInt,
        error -> Nullable<Text>,
        notes -> Text,
        failure -> Nullable<Text>,
        slot -> Nullable<Timestamp>,
        epoch -> BigInt,
    }
}

diesel::table! {
    seed_crops (seed_id, crop_id) {
        seed_id -> BigInt,
        crop_id -> BigInt,
    }
}

diesel::table! {
    skill_level_rewards (skill, level, slot) {
        skill -> Text,
        level -> BigInt,
        slot -> BigInt,
        kind -> Text,
        item_id -> Nullable<BigInt>,
        quantity -> BigInt,
    }
}

diesel::table! {
    source_fingerprints (source) {
        source -> Text,
        fingerprint -> Text,
        loaded_at -> Timestamp,
    }
}

diesel::table! {
    tent_offers (week, item_id) {
        week -> Text,
        item_id -> BigInt,
        item_name -> Text,
        price -> Nullable<BigInt>,
    }
}

diesel::table! {
    tower_levels (level) {
        level -> BigInt,
        silver -> Nullable<BigInt>,
        gold -> Nullable<BigInt>,
        mm_item_1 -> Nullable<BigInt>,
        mm_item_2 -> Nullable<BigInt>,
        mm_item_3 -> Nullable<BigInt>,
    }
}

diesel::table! {
    tower_rewards (level, slot) {
        level -> BigInt,
        slot -> BigInt,
        item_id -> BigInt,
        quantity -> BigInt,
    }
}

diesel::table! {
    wishing_well_outputs (item_id, output_id) {
        item_id -> BigInt,
        output_id -> BigInt,
    }
}

diesel::joinable!(card_combo_cards -> card_combos (combo_id));
diesel::joinable!(change_events -> runs (run_id));
diesel::joinable!(fan_out_tasks -> runs (run_id));
diesel::joinable!(game_update_items -> game_updates (update_id));
diesel::joinable!(npc_items -> npcs (npc_id));
diesel::joinable!(npc_reward_items -> npc_rewards (reward_id));
diesel::joinable!(npc_rewards -> npcs (npc_id));
diesel::joinable!(outbox -> runs (run_id));
diesel::joinable!(password_clues -> passwords (password));
diesel::joinable!(password_rewards -> passwords (password));
diesel::joinable!(pet_items -> pets (pet_id));
diesel::joinable!(quest_required_items -> quests (quest_id));
diesel::joinable!(quest_reward_items -> quests (quest_id));
diesel::joinable!(tower_rewards -> tower_levels (level));

diesel::allow_tables_to_appear_in_same_query!(
    card_combo_cards,
    card_combos,
    change_events,
    community_goals,
    demo_records,
    exchange_offers,
    fan_out_tasks,
    game_update_items,
    game_updates,
    item_details,
    item_sources,
    items,
    location_drops,
    locations,
    locksmith_contents,
    manual_productions,
    nodes,
    npc_items,
    npc_profiles,
    npc_reward_items,
    npc_rewards,
    npcs,
    outbox,
    page_fingerprints,
    password_clues,
    password_rewards,
    passwords,
    pet_items,
    pets,
    pipelines,
    profile_backgrounds,
    quest_required_items,
    quest_reward_items,
    questlines,
    quests,
    recipe_ingredients,
    runs,
    seed_crops,
    skill_level_rewards,
    source_fingerprints,
    tent_offers,
    tower_levels,
    tower_rewards,
    wishing_well_outputs,
);
