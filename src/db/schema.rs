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
    }
}

diesel::joinable!(change_events -> runs (run_id));
diesel::joinable!(outbox -> runs (run_id));

diesel::allow_tables_to_appear_in_same_query!(change_events, demo_records, outbox, pipelines, runs,);
