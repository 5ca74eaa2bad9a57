//! Loads parsed items into the database: diff against what is stored, refuse mass deletes, then
//! write only the changes — batched multi-row upserts, grouped deletes, the change feed and the
//! source fingerprint — in one transaction, so a crash at any point leaves either the previous
//! rows or the new ones, and a re-run converges.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use diesel::{ExpressionMethods, QueryDsl, SelectableHelper};
use hayloft_actors::events::{Change, ChangeOp};
use hayloft_actors::ledger::RunCounts;
use hayloft_actors::pipeline::{LoadReport, RunContext, StageError};
use hayloft_actors::storage::StorageFailure;

use super::rows::{Item, LocksmithContent, PairKey, RecipeIngredient, SeedCrop, WellOutput};
use super::transform::ItemsData;
use crate::db::outbox::{Announcer, NewOutboxRow, NEW_NAMES};
use crate::db::schema::{items, locksmith_contents, recipe_ingredients, seed_crops, wishing_well_outputs};
use crate::db::{with_conn, Database, DbError};
use crate::failpoint;
use crate::pipelines::shared::common::{
    change_announcements, diff_rows, record_feed_postgres, record_feed_sqlite, DeleteGuard, TableCounts, TableDiff,
};

/// Rows per multi-row statement. `items` has 58 columns: 400 rows stay under SQLite's 32,766
/// bound parameters and PostgreSQL's 65,535.
const ITEM_BATCH: usize = 400;
/// Link tables and the change feed have at most 7 columns.
const LINK_BATCH: usize = 2_000;
/// Ids per `DELETE … WHERE id IN (…)`.
const DELETE_BATCH: usize = 5_000;

/// Everything one load writes, decided before the transaction starts.
pub struct Writes {
    run_id: i64,
    source: &'static str,
    fingerprint: String,
    /// Items in an order where every referenced item comes first.
    items: Vec<Item>,
    /// Items of a reference cycle, written again with their references once all exist.
    item_fixups: Vec<Item>,
    item_deletes: Vec<i64>,
    recipes: Vec<RecipeIngredient>,
    recipe_deletes: Vec<PairKey>,
    locksmith: Vec<LocksmithContent>,
    locksmith_deletes: Vec<PairKey>,
    seeds: Vec<SeedCrop>,
    seed_deletes: Vec<PairKey>,
    wells: Vec<WellOutput>,
    well_deletes: Vec<PairKey>,
    changes: Vec<Change>,
    /// The announcement of these changes, committed with them.
    outbox: Vec<NewOutboxRow>,
}

/// What is stored now, read before diffing.
struct Stored {
    items: Vec<Item>,
    recipes: Vec<RecipeIngredient>,
    locksmith: Vec<LocksmithContent>,
    seeds: Vec<SeedCrop>,
    wells: Vec<WellOutput>,
}

async fn read_stored(db: &Database) -> Result<Stored, DbError> {
    with_conn!(db, readers, |conn| {
        Ok::<_, DbError>(Stored {
            items: items::table.select(Item::as_select()).load(conn).await?,
            recipes: recipe_ingredients::table.select(RecipeIngredient::as_select()).load(conn).await?,
            locksmith: locksmith_contents::table.select(LocksmithContent::as_select()).load(conn).await?,
            seeds: seed_crops::table.select(SeedCrop::as_select()).load(conn).await?,
            wells: wishing_well_outputs::table.select(WellOutput::as_select()).load(conn).await?,
        })
    })
}

/// Every stored row of the items pipeline's tables, in key order: two databases hold the same
/// data exactly when their snapshots are equal (used to check crash convergence).
pub async fn snapshot(db: &Database) -> Result<serde_json::Value, DbError> {
    let mut stored = read_stored(db).await?;
    stored.items.sort_by_key(|item| item.id);
    stored.recipes.sort_by_key(|row| (row.item_id, row.ingredient_id));
    stored.locksmith.sort_by_key(|row| (row.container_id, row.item_id));
    stored.seeds.sort_by_key(|row| (row.seed_id, row.crop_id));
    stored.wells.sort_by_key(|row| (row.item_id, row.output_id));
    Ok(serde_json::json!({
        "items": stored.items,
        "recipe_ingredients": stored.recipes,
        "locksmith_contents": stored.locksmith,
        "seed_crops": stored.seeds,
        "wishing_well_outputs": stored.wells,
    }))
}

fn database(error: impl std::error::Error + Send + Sync + 'static) -> StageError {
    StageError::Database(StorageFailure::new(error))
}

/// Orders items so that every item comes after the items it references (Kahn's algorithm).
/// Members of a reference cycle are written first without their references, then again whole.
fn insertion_order(rows: Vec<Item>) -> (Vec<Item>, Vec<Item>) {
    let ids: BTreeSet<i64> = rows.iter().map(|item| item.id).collect();
    let mut waiting_on: HashMap<i64, usize> = HashMap::new();
    let mut dependents: HashMap<i64, Vec<i64>> = HashMap::new();
    for item in &rows {
        let pending: BTreeSet<i64> =
            item.references().filter(|target| ids.contains(target) && *target != item.id).collect();
        for target in &pending {
            dependents.entry(*target).or_default().push(item.id);
        }
        waiting_on.insert(item.id, pending.len());
    }
    let mut by_id: BTreeMap<i64, Item> = rows.into_iter().map(|item| (item.id, item)).collect();
    let mut ready: Vec<i64> = waiting_on.iter().filter(|(_, count)| **count == 0).map(|(id, _)| *id).collect();
    ready.sort_unstable();
    let mut ordered = Vec::with_capacity(by_id.len());
    while let Some(id) = ready.pop() {
        if let Some(item) = by_id.remove(&id) {
            ordered.push(item);
        }
        for dependent in dependents.get(&id).into_iter().flatten() {
            if let Some(count) = waiting_on.get_mut(dependent) {
                *count -= 1;
                if *count == 0 {
                    ready.push(*dependent);
                }
            }
        }
    }
    // Whatever is left sits on a cycle (or references something on one).
    let fixups: Vec<Item> = by_id.into_values().collect();
    for item in &fixups {
        let mut detached = item.clone();
        detached.cooking_recipe_id = None;
        detached.loot_key_id = None;
        ordered.push(detached);
    }
    (ordered, fixups)
}

fn add(total: &mut RunCounts, counts: &TableCounts) {
    total.inserted += counts.inserted;
    total.updated += counts.updated;
    total.deleted += counts.deleted;
    total.unchanged += counts.unchanged;
}

/// Diffs `data` against the database and writes the changes.
pub async fn load(
    db: &Database,
    data: ItemsData,
    fingerprint: String,
    run: &RunContext,
    guard: &DeleteGuard,
    source: &'static str,
    announcer: Option<&dyn Announcer>,
) -> Result<LoadReport, StageError> {
    // Read before, not inside, the write transaction, so the writer is held only for the
    // writes. Safe because the ledger lets one run of this pipeline at a time, and nothing
    // else writes these tables.
    let stored = read_stored(db).await.map_err(database)?;
    let pair = |a: i64, b: i64| PairKey(a, b);
    let mut item_diff = diff_rows("item", stored.items, data.items, |item| item.id);
    let mut recipe_diff = diff_rows("recipe_ingredient", stored.recipes, data.recipe_ingredients, |row| {
        pair(row.item_id, row.ingredient_id)
    });
    let mut locksmith_diff = diff_rows("locksmith_content", stored.locksmith, data.locksmith_contents, |row| {
        pair(row.container_id, row.item_id)
    });
    let mut seed_diff = diff_rows("seed_crop", stored.seeds, data.seed_crops, |row| pair(row.seed_id, row.crop_id));
    let mut well_diff =
        diff_rows("wishing_well_output", stored.wells, data.well_outputs, |row| pair(row.item_id, row.output_id));

    // Unreadable rows keep their stored version, and so do the link rows of those items.
    // A recipe row that could not be read keeps the recipe and locksmith rows of its item.
    // A malformed id list keeps the seed-crop and wishing-well pairs of its item.
    let (items, recipes, lists) = (&data.unreadable_items, &data.unreadable_recipes, &data.unreadable_lists);
    if !items.is_empty() || !recipes.is_empty() || !lists.is_empty() {
        let involved = |key: &PairKey| items.protects(key.0) || items.protects(key.1);
        let recipe_involved = |key: &PairKey| involved(key) || recipes.protects(key.0);
        item_diff.keep_rows(|id| items.protects(*id));
        recipe_diff.keep_rows(recipe_involved);
        locksmith_diff.keep_rows(recipe_involved);
        let list_involved = |key: &PairKey| involved(key) || lists.protects(key.0);
        seed_diff.keep_rows(list_involved);
        well_diff.keep_rows(list_involved);
    }

    let tables = [
        ("items", item_diff.counts),
        ("recipe_ingredients", recipe_diff.counts),
        ("locksmith_contents", locksmith_diff.counts),
        ("seed_crops", seed_diff.counts),
        ("wishing_well_outputs", well_diff.counts),
    ];
    if !run.options.allow_mass_delete {
        for (table, counts) in &tables {
            guard.check(&run.pipeline, table, counts)?;
        }
    }
    let mut total = RunCounts::default();
    let mut notes = data.notes;
    for (table, counts) in &tables {
        add(&mut total, counts);
        if counts.inserted + counts.updated + counts.deleted > 0 {
            notes.push(format!(
                "{table}: +{} inserted, ~{} updated, -{} deleted, ={} unchanged",
                counts.inserted, counts.updated, counts.deleted, counts.unchanged
            ));
        }
    }

    let TableDiff { upserts: item_upserts, deletes: item_deletes, changes: item_changes, .. } = item_diff;
    let (items_ordered, item_fixups) = insertion_order(item_upserts);
    if !item_fixups.is_empty() {
        notes.push(format!("{} items reference each other in a cycle; written in two steps", item_fixups.len()));
    }
    let mut changes = item_changes;
    changes.extend(recipe_diff.changes);
    changes.extend(locksmith_diff.changes);
    changes.extend(seed_diff.changes);
    changes.extend(well_diff.changes);
    // New records are announced first written first (as the change feed lists them), items
    // by name.
    let new_names: Vec<String> = changes
        .iter()
        .filter(|change| change.op == ChangeOp::Insert)
        .take(NEW_NAMES)
        .map(|change| {
            let item = (change.entity == "item")
                .then(|| items_ordered.iter().find(|item| item.id.to_string() == change.key))
                .flatten();
            item.map_or_else(|| format!("{} {}", change.entity, change.key), |item| item.name.clone())
        })
        .collect();
    let outbox = change_announcements(announcer, run, total, &new_names);
    let writes = Writes {
        run_id: run.run_id,
        source,
        fingerprint,
        items: items_ordered,
        item_fixups,
        item_deletes,
        recipes: recipe_diff.upserts,
        recipe_deletes: recipe_diff.deletes,
        locksmith: locksmith_diff.upserts,
        locksmith_deletes: locksmith_diff.deletes,
        seeds: seed_diff.upserts,
        seed_deletes: seed_diff.deletes,
        wells: well_diff.upserts,
        well_deletes: well_diff.deletes,
        changes,
        outbox,
    };
    failpoint::pause("items.before-write");
    let changes = apply(db, writes).await.map_err(database)?;
    failpoint::pause("items.after-write");
    Ok(LoadReport { counts: total, changes, notes })
}

/// Groups link-row keys by their first half, for `DELETE … WHERE a = ? AND b IN (…)`.
fn grouped(keys: &[PairKey]) -> BTreeMap<i64, Vec<i64>> {
    let mut groups: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for PairKey(first, second) in keys {
        groups.entry(*first).or_default().push(*second);
    }
    groups
}

/// The statements of one load, written once for both backends: `$conn` is a sync SQLite
/// connection or an async PostgreSQL one, and `$($await)*` is empty or `.await` accordingly.
macro_rules! write_statements {
    ($conn:ident, $writes:ident, $($await:tt)*) => {{
        use diesel::upsert::excluded;
        let w = $writes;
        for chunk in w.items.chunks(ITEM_BATCH).chain(w.item_fixups.chunks(ITEM_BATCH)) {
            diesel::insert_into(items::table)
                .values(chunk)
                .on_conflict(items::id)
                .do_update()
                .set(excluded_item_columns!(excluded))
                .execute(&mut *$conn)$($await)*?;
        }
        failpoint::pause("items.during-write");
        for chunk in w.recipes.chunks(LINK_BATCH) {
            diesel::insert_into(recipe_ingredients::table)
                .values(chunk)
                .on_conflict((recipe_ingredients::item_id, recipe_ingredients::ingredient_id))
                .do_update()
                .set((
                    recipe_ingredients::quantity.eq(excluded(recipe_ingredients::quantity)),
                    recipe_ingredients::kind.eq(excluded(recipe_ingredients::kind)),
                ))
                .execute(&mut *$conn)$($await)*?;
        }
        for chunk in w.locksmith.chunks(LINK_BATCH) {
            diesel::insert_into(locksmith_contents::table)
                .values(chunk)
                .on_conflict((locksmith_contents::container_id, locksmith_contents::item_id))
                .do_update()
                .set((
                    locksmith_contents::quantity_min.eq(excluded(locksmith_contents::quantity_min)),
                    locksmith_contents::quantity_max.eq(excluded(locksmith_contents::quantity_max)),
                ))
                .execute(&mut *$conn)$($await)*?;
        }
        for chunk in w.seeds.chunks(LINK_BATCH) {
            diesel::insert_into(seed_crops::table).values(chunk).on_conflict_do_nothing().execute(&mut *$conn)$($await)*?;
        }
        for chunk in w.wells.chunks(LINK_BATCH) {
            diesel::insert_into(wishing_well_outputs::table)
                .values(chunk)
                .on_conflict_do_nothing()
                .execute(&mut *$conn)$($await)*?;
        }
        for (item, ingredients) in grouped(&w.recipe_deletes) {
            diesel::delete(
                recipe_ingredients::table
                    .filter(recipe_ingredients::item_id.eq(item))
                    .filter(recipe_ingredients::ingredient_id.eq_any(ingredients)),
            )
            .execute(&mut *$conn)$($await)*?;
        }
        for (container, contents) in grouped(&w.locksmith_deletes) {
            diesel::delete(
                locksmith_contents::table
                    .filter(locksmith_contents::container_id.eq(container))
                    .filter(locksmith_contents::item_id.eq_any(contents)),
            )
            .execute(&mut *$conn)$($await)*?;
        }
        for (seed, crops) in grouped(&w.seed_deletes) {
            diesel::delete(seed_crops::table.filter(seed_crops::seed_id.eq(seed)).filter(seed_crops::crop_id.eq_any(crops)))
                .execute(&mut *$conn)$($await)*?;
        }
        for (item, outputs) in grouped(&w.well_deletes) {
            diesel::delete(
                wishing_well_outputs::table
                    .filter(wishing_well_outputs::item_id.eq(item))
                    .filter(wishing_well_outputs::output_id.eq_any(outputs)),
            )
            .execute(&mut *$conn)$($await)*?;
        }
        for chunk in w.item_deletes.chunks(DELETE_BATCH) {
            diesel::delete(items::table.filter(items::id.eq_any(chunk))).execute(&mut *$conn)$($await)*?;
        }
        Ok::<(), diesel::result::Error>(())
    }};
}

/// `col = excluded.col` for every non-key column of `items`.
macro_rules! excluded_item_columns {
    ($excluded:ident) => {
        excluded_item_columns!(@set $excluded;
            name, item_type, rarity, description, description_ext, image, farm_image, xp_value, buy_price,
            sell_price, craft_price, crafting_level, flea_market_price, flea_market_rotates, tent_price,
            tent_rotates, tent_max, black_market_price, soap_price, soap_rotates, event_price, yield_minutes,
            yield_quantity, farming_level, can_cook, cooking_level, cooking_recipe_id, drop_weight,
            runecube_weight, manual_fishing_only, charter_drop, openable, random_contents, loot_key_id, loot_gold,
            loot_shown, void_bag, void_bag_excluded, active, event_item, givable, mastery, start_locked,
            find_alert, min_trade_level, min_send_level, min_receive_level, phr_excluded, phr_limit,
            effect_minutes, effect_count, effect_type, effect_amount, date_added, mastery_count_1,
            mastery_count_2, mastery_count_3)
    };
    (@set $excluded:ident; $($column:ident),* $(,)?) => {
        ($(items::$column.eq($excluded(items::$column)),)*)
    };
}

fn write_sqlite(conn: &mut diesel::SqliteConnection, writes: &Writes) -> diesel::QueryResult<()> {
    use diesel::RunQueryDsl;
    write_statements!(conn, writes,)?;
    record_feed_sqlite(conn, writes.run_id, &writes.changes, writes.source, &writes.fingerprint, &writes.outbox)
}

async fn write_postgres(conn: &mut diesel_async::AsyncPgConnection, writes: &Writes) -> diesel::QueryResult<()> {
    use diesel_async::RunQueryDsl;
    write_statements!(conn, writes, .await)?;
    record_feed_postgres(conn, writes.run_id, &writes.changes, writes.source, &writes.fingerprint, &writes.outbox).await
}

/// Runs the writes in one transaction. SQLite's multi-row inserts go through sync diesel on a
/// blocking thread (diesel-async cannot build them for SQLite), in a `BEGIN IMMEDIATE`.
async fn apply(db: &Database, writes: Writes) -> Result<Vec<Change>, DbError> {
    match db {
        Database::Postgres(pool) => {
            use diesel_async::AsyncConnection;
            let mut conn = pool.get().await.map_err(DbError::pool)?;
            let writes = conn
                .transaction(async |conn| {
                    write_postgres(conn, &writes).await?;
                    Ok::<_, DbError>(writes)
                })
                .await?;
            Ok(writes.changes)
        }
        Database::Sqlite { writer, .. } => {
            let mut conn = writer.get().await.map_err(DbError::pool)?;
            let writes = conn
                .spawn_blocking(move |conn| {
                    conn.immediate_transaction(|conn| write_sqlite(conn, &writes))?;
                    Ok(writes)
                })
                .await?;
            Ok(writes.changes)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn item(id: i64, recipe: Option<i64>, key: Option<i64>) -> Item {
        let data = super::super::transform::parse(
            serde_json::to_string(&serde_json::json!({ "items": [crate::pipelines::items::tests::raw_item(id)] }))
                .unwrap()
                .as_bytes(),
            "test",
        )
        .unwrap();
        let mut item = data.items.into_iter().next().unwrap();
        item.cooking_recipe_id = recipe;
        item.loot_key_id = key;
        item
    }

    // Referenced items are written before the items that reference them.
    #[test]
    fn items_are_ordered_after_what_they_reference() {
        let rows = vec![item(1, Some(2), None), item(2, None, Some(3)), item(3, None, None), item(4, Some(99), None)];
        let (ordered, fixups) = insertion_order(rows);
        let position = |id| ordered.iter().position(|item| item.id == id).unwrap();
        assert!(position(3) < position(2) && position(2) < position(1));
        assert!(fixups.is_empty());
    }

    // A reference cycle is written in two steps instead of failing.
    #[test]
    fn reference_cycles_are_written_in_two_steps() {
        let (ordered, fixups) = insertion_order(vec![item(1, Some(2), None), item(2, Some(1), None)]);
        assert_eq!(ordered.len(), 2);
        assert!(ordered.iter().all(|item| item.cooking_recipe_id.is_none()));
        assert_eq!(fixups.len(), 2);
    }
}
