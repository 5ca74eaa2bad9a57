//! Loads parsed items through the generic table loader ([`load_dataset`]): diff against what is
//! stored, refuse mass deletes, then write only the changes, the change feed and the source
//! fingerprint in one transaction, so a crash at any point leaves either the previous rows or
//! the new ones, and a re-run converges.
//!
//! What is the items pipeline's own: the order items are written in (an item after the items it
//! references, see [`insertion_order`]), and which stored rows an unreadable input row protects
//! (see [`dataset`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use hayloft_actors::pipeline::{LoadReport, RunContext, StageError};

use super::rows::{Item, LocksmithContent, RecipeIngredient, SeedCrop, WellOutput};
use super::transform::ItemsData;
use crate::db::outbox::Announcer;
use crate::db::{Database, DbError};
use crate::pipelines::shared::common::{DeleteGuard, Unreadable};
use crate::pipelines::shared::table::{load_dataset, Dataset, DeletePolicy, StoredRow, WriteOrder};

/// Every stored row of the items pipeline's tables, in key order: two databases hold the same
/// data exactly when their snapshots are equal (used to check crash convergence).
pub async fn snapshot(db: &Database) -> Result<serde_json::Value, DbError> {
    let mut items = Item::read_all(db).await?;
    let mut recipes = RecipeIngredient::read_all(db).await?;
    let mut locksmith = LocksmithContent::read_all(db).await?;
    let mut seeds = SeedCrop::read_all(db).await?;
    let mut wells = WellOutput::read_all(db).await?;
    items.sort_by_key(|item| item.id);
    recipes.sort_by_key(|row| (row.item_id, row.ingredient_id));
    locksmith.sort_by_key(|row| (row.container_id, row.item_id));
    seeds.sort_by_key(|row| (row.seed_id, row.crop_id));
    wells.sort_by_key(|row| (row.item_id, row.output_id));
    Ok(serde_json::json!({
        "items": items,
        "recipe_ingredients": recipes,
        "locksmith_contents": locksmith,
        "seed_crops": seeds,
        "wishing_well_outputs": wells,
    }))
}

/// Orders items so that every item comes after the items it references (Kahn's algorithm).
/// Members of a reference cycle are written first without their references, then again whole.
pub(super) fn insertion_order(rows: Vec<Item>) -> WriteOrder<Item> {
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
    WriteOrder { rows: ordered, fixups }
}

/// The input rows that could not be read, shared by the delete rules of the five tables.
struct UnreadableInput {
    items: Unreadable,
    recipes: Unreadable,
    lists: Unreadable,
}

impl UnreadableInput {
    /// A row naming an unreadable item keeps its stored version: the item did not vanish, its
    /// row is broken.
    fn names_an_unreadable_item(&self, first: i64, second: i64) -> bool {
        self.items.protects(first) || self.items.protects(second)
    }

    /// Recipe and locksmith rows are also kept when a recipe row of their item could not be read.
    fn protects_recipe_row(&self, item: i64, other: i64) -> bool {
        self.names_an_unreadable_item(item, other) || self.recipes.protects(item)
    }

    /// Seed-crop and wishing-well pairs are also kept when their item's id list was malformed.
    fn protects_list_row(&self, item: i64, other: i64) -> bool {
        self.names_an_unreadable_item(item, other) || self.lists.protects(item)
    }
}

/// The tables of one items load, parents first, each keeping the stored rows its unreadable
/// input protects.
pub fn dataset(data: ItemsData) -> Dataset {
    let unreadable = Arc::new(UnreadableInput {
        items: data.unreadable_items,
        recipes: data.unreadable_recipes,
        lists: data.unreadable_lists,
    });
    let (for_items, for_recipes, for_locksmith, for_seeds) =
        (unreadable.clone(), unreadable.clone(), unreadable.clone(), unreadable.clone());
    Dataset::new()
        .table(data.items, DeletePolicy::keep_where(move |row: &Item| for_items.items.protects(row.id)))
        .table(
            data.recipe_ingredients,
            DeletePolicy::keep_where(move |row: &RecipeIngredient| {
                for_recipes.protects_recipe_row(row.item_id, row.ingredient_id)
            }),
        )
        .table(
            data.locksmith_contents,
            DeletePolicy::keep_where(move |row: &LocksmithContent| {
                for_locksmith.protects_recipe_row(row.container_id, row.item_id)
            }),
        )
        .table(
            data.seed_crops,
            DeletePolicy::keep_where(move |row: &SeedCrop| for_seeds.protects_list_row(row.seed_id, row.crop_id)),
        )
        .table(
            data.well_outputs,
            DeletePolicy::keep_where(move |row: &WellOutput| unreadable.protects_list_row(row.item_id, row.output_id)),
        )
        .with_notes(data.notes)
        .with_dropped(data.skipped_rows)
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
    // `items.after-write`, the crash tests' last point, is the loader's `<source>.after-write`.
    load_dataset(db, dataset(data), fingerprint, run, guard, source, announcer).await
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
        let WriteOrder { rows: ordered, fixups } = insertion_order(rows);
        let position = |id| ordered.iter().position(|item| item.id == id).unwrap();
        assert!(position(3) < position(2) && position(2) < position(1));
        assert!(fixups.is_empty());
    }

    // A reference cycle is written in two steps instead of failing.
    #[test]
    fn reference_cycles_are_written_in_two_steps() {
        let WriteOrder { rows: ordered, fixups } =
            insertion_order(vec![item(1, Some(2), None), item(2, Some(1), None)]);
        assert_eq!(ordered.len(), 2);
        assert!(ordered.iter().all(|item| item.cooking_recipe_id.is_none()));
        assert_eq!(fixups.len(), 2);
    }
}
