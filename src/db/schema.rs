// @generated automatically by Diesel CLI.

diesel::table! {
    change_events (id) {
        id -> BigInt,
        run_id -> BigInt,
        entity -> Text,
        entity_key -> Text,
        op -> Text,
        fields -> Text,
        recorded_at -> Timestamp,
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
    pipelines (name) {
        name -> Text,
        schedule -> Text,
        enabled -> Bool,
        registered_at -> Timestamp,
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
    }
}

diesel::table! {
    seed_crops (seed_id, crop_id) {
        seed_id -> BigInt,
        crop_id -> BigInt,
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
    wishing_well_outputs (item_id, output_id) {
        item_id -> BigInt,
        output_id -> BigInt,
    }
}

diesel::joinable!(change_events -> runs (run_id));
diesel::joinable!(outbox -> runs (run_id));

diesel::allow_tables_to_appear_in_same_query!(
    change_events,
    demo_records,
    items,
    locksmith_contents,
    outbox,
    pipelines,
    recipe_ingredients,
    runs,
    seed_crops,
    source_fingerprints,
    wishing_well_outputs,
);
