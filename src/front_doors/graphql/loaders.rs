//! Batched loading of related rows: every nested field goes through a batcher, so one request
//! issues one `SELECT … WHERE key IN (…)` per relation and nesting level, however many parent
//! rows there are (no N+1).
//!
//! Why not async-graphql's DataLoader: it fires a batch a fixed delay after the first key, and
//! resolving a long list yields to the executor every few dozen items, so a slow pass (a debug
//! build, a busy machine) splits one level into several batches — the statement count then
//! depends on timing. A [`Batcher`] fires when the executor has nothing else to run: every key
//! the pending resolvers can ask for has been asked, whatever the speed, and nothing waits on a
//! timer.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use tokio::sync::oneshot;

use crate::db::Database;
use crate::pipelines::shared::table::StoredRow;

/// Fetches the rows whose key column is one of `keys`.
pub type Fetch<R, K> = fn(Database, Vec<K>) -> BoxFuture<'static, Result<Vec<R>, String>>;

/// Keys per `IN (…)`: far below SQLite's and PostgreSQL's bound-parameter limits.
const KEYS_PER_STATEMENT: usize = 10_000;

type Reply<R> = oneshot::Sender<Result<Vec<R>, Arc<String>>>;

struct Pending<R, K> {
    waiters: Vec<(K, Reply<R>)>,
    /// Keys asked for so far; the batch fires once this stops moving.
    asked: u64,
    scheduled: bool,
}

/// Collects the keys one relation is asked for and loads them in one batch.
pub struct Batcher<R, K> {
    db: Database,
    fetch: Fetch<R, K>,
    key: fn(&R) -> Option<K>,
    pending: Mutex<Pending<R, K>>,
}

/// A row's key columns joined with `/`, to order related lists.
pub trait RowKey: Clone + 'static {
    fn row_key(&self) -> String;
}

impl<R: StoredRow> RowKey for R {
    fn row_key(&self) -> String {
        self.key()
    }
}

/// Orders rows by their key columns, numbers as numbers (`9` before `10`), so related lists
/// come out the same on every backend.
fn by_key<R: RowKey>(a: &R, b: &R) -> std::cmp::Ordering {
    let (a, b) = (a.row_key(), b.row_key());
    for (left, right) in a.split('/').zip(b.split('/')) {
        let order = match (left.parse::<i64>(), right.parse::<i64>()) {
            (Ok(left), Ok(right)) => left.cmp(&right),
            _ => left.cmp(right),
        };
        if order.is_ne() {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

impl<R, K> Batcher<R, K>
where
    R: RowKey,
    K: Clone + Eq + Hash + 'static,
{
    pub fn new(db: &Database, fetch: Fetch<R, K>, key: fn(&R) -> Option<K>) -> Arc<Self> {
        Arc::new(Self {
            db: db.clone(),
            fetch,
            key,
            pending: Mutex::new(Pending { waiters: Vec::new(), asked: 0, scheduled: false }),
        })
    }

    /// The rows related to `key` (none is an empty list).
    pub async fn load(self: &Arc<Self>, key: K) -> Result<Vec<R>, Arc<String>> {
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            pending.waiters.push((key, reply));
            pending.asked += 1;
            !std::mem::replace(&mut pending.scheduled, true)
        };
        if start {
            let batcher = self.clone();
            actix_web::rt::spawn(async move { batcher.run().await });
        }
        answer.await.unwrap_or_else(|_| Err(Arc::new("the batch was cancelled".to_owned())))
    }

    fn asked(&self) -> u64 {
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).asked
    }

    async fn run(&self) {
        // Let every other ready task run until no new key has come in for two rounds: the
        // resolvers that can ask are then all waiting on a batch.
        let mut seen = self.asked();
        let mut quiet_rounds = 0;
        while quiet_rounds < 2 {
            tokio::task::yield_now().await;
            let now = self.asked();
            if now == seen {
                quiet_rounds += 1;
            } else {
                seen = now;
                quiet_rounds = 0;
            }
        }
        let waiters = {
            let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            pending.scheduled = false;
            std::mem::take(&mut pending.waiters)
        };
        let mut keys: Vec<K> = Vec::with_capacity(waiters.len());
        let mut unique = std::collections::HashSet::with_capacity(waiters.len());
        for (key, _) in &waiters {
            if unique.insert(key.clone()) {
                keys.push(key.clone());
            }
        }
        let mut grouped: HashMap<K, Vec<R>> = HashMap::with_capacity(keys.len());
        let mut failure = None;
        for chunk in keys.chunks(KEYS_PER_STATEMENT) {
            match (self.fetch)(self.db.clone(), chunk.to_vec()).await {
                Ok(rows) => {
                    for row in rows {
                        if let Some(key) = (self.key)(&row) {
                            grouped.entry(key).or_default().push(row);
                        }
                    }
                }
                Err(error) => {
                    failure = Some(Arc::new(error));
                    break;
                }
            }
        }
        for rows in grouped.values_mut() {
            rows.sort_by(by_key);
        }
        for (key, reply) in waiters {
            let answer = match &failure {
                Some(error) => Err(error.clone()),
                None => Ok(grouped.get(&key).cloned().unwrap_or_default()),
            };
            // A waiter that went away (a cancelled request) needs no answer.
            let _ = reply.send(answer);
        }
    }
}

/// `fetch` for `$row` rows of `$table` whose `$column` is in the keys (of type `$key`).
macro_rules! fetch_in {
    ($row:ty, $table:ident, $column:ident, $key:ty) => {{
        fn fetch(
            db: $crate::db::Database,
            keys: Vec<$key>,
        ) -> futures::future::BoxFuture<'static, Result<Vec<$row>, String>> {
            Box::pin(async move {
                use diesel::{ExpressionMethods as _, QueryDsl as _, SelectableHelper as _};
                $crate::db::with_conn!(&db, readers, |conn| {
                    $crate::db::schema::$table::table
                        .filter($crate::db::schema::$table::$column.eq_any(keys))
                        .select(<$row>::as_select())
                        .load(conn)
                        .await
                        .map_err($crate::db::DbError::Query)
                })
                .map_err(|error| error.to_string())
            })
        }
        fetch as $crate::front_doors::graphql::loaders::Fetch<$row, $key>
    }};
}

/// Declares [`Loaders`]: one batcher per relation direction, made fresh for each request.
macro_rules! loaders {
    ($($field:ident: $row:ty = $table:ident . $column:ident [$key:ty], |$r:ident| $key_of:expr;)*) => {
        /// The batchers of one request.
        pub struct Loaders {
            $(pub $field: Arc<Batcher<$row, $key>>,)*
        }

        impl Loaders {
            pub fn new(db: &Database) -> Self {
                Self { $($field: Batcher::new(db, fetch_in!($row, $table, $column, $key), |$r: &$row| $key_of),)* }
            }
        }
    };
}

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

loaders! {
    items_by_id: Item = items.id [i64], |r| Some(r.id);
    items_by_cooking_recipe: Item = items.cooking_recipe_id [i64], |r| r.cooking_recipe_id;
    items_by_loot_key: Item = items.loot_key_id [i64], |r| r.loot_key_id;
    recipes_by_item: RecipeIngredient = recipe_ingredients.item_id [i64], |r| Some(r.item_id);
    recipes_by_ingredient: RecipeIngredient = recipe_ingredients.ingredient_id [i64], |r| Some(r.ingredient_id);
    contents_by_container: LocksmithContent = locksmith_contents.container_id [i64], |r| Some(r.container_id);
    contents_by_item: LocksmithContent = locksmith_contents.item_id [i64], |r| Some(r.item_id);
    crops_by_seed: SeedCrop = seed_crops.seed_id [i64], |r| Some(r.seed_id);
    seeds_by_crop: SeedCrop = seed_crops.crop_id [i64], |r| Some(r.crop_id);
    well_by_item: WellOutput = wishing_well_outputs.item_id [i64], |r| Some(r.item_id);
    well_by_output: WellOutput = wishing_well_outputs.output_id [i64], |r| Some(r.output_id);
    npcs_by_id: Npc = npcs.id [i64], |r| Some(r.id);
    npc_items_by_npc: NpcItem = npc_items.npc_id [i64], |r| Some(r.npc_id);
    npc_items_by_item: NpcItem = npc_items.item_id [i64], |r| Some(r.item_id);
    rewards_by_npc: NpcReward = npc_rewards.npc_id [i64], |r| r.npc_id;
    rewards_by_id: NpcReward = npc_rewards.id [i64], |r| Some(r.id);
    reward_items_by_reward: NpcRewardItem = npc_reward_items.reward_id [i64], |r| Some(r.reward_id);
    reward_items_by_item: NpcRewardItem = npc_reward_items.item_id [i64], |r| Some(r.item_id);
    profiles_by_npc: NpcProfile = npc_profiles.npc_id [i64], |r| r.npc_id;
    tower_by_level: TowerLevel = tower_levels.level [i64], |r| Some(r.level);
    tower_rewards_by_level: TowerReward = tower_rewards.level [i64], |r| Some(r.level);
    tower_rewards_by_item: TowerReward = tower_rewards.item_id [i64], |r| Some(r.item_id);
    locations_by_id: Location = locations.id [i64], |r| Some(r.id);
    drops_by_location: LocationDrop = location_drops.location_id [i64], |r| Some(r.location_id);
    drops_by_item: LocationDrop = location_drops.item_id [i64], |r| Some(r.item_id);
    goals_by_goal_item: CommunityGoal = community_goals.goal_item_id [i64], |r| r.goal_item_id;
    goals_by_reward_item: CommunityGoal = community_goals.reward_item_id [i64], |r| r.reward_item_id;
    offers_by_give: ExchangeOffer = exchange_offers.give_item_id [i64], |r| Some(r.give_item_id);
    offers_by_receive: ExchangeOffer = exchange_offers.receive_item_id [i64], |r| Some(r.receive_item_id);
    combos_by_id: CardCombo = card_combos.id [i64], |r| Some(r.id);
    combos_by_reward: CardCombo = card_combos.reward_item_id [i64], |r| r.reward_item_id;
    cards_by_combo: CardComboCard = card_combo_cards.combo_id [i64], |r| Some(r.combo_id);
    tent_by_item: TentOffer = tent_offers.item_id [i64], |r| Some(r.item_id);
    updates_by_id: GameUpdate = game_updates.id [i64], |r| Some(r.id);
    update_items_by_update: GameUpdateItem = game_update_items.update_id [i64], |r| Some(r.update_id);
    update_items_by_item: GameUpdateItem = game_update_items.item_id [i64], |r| Some(r.item_id);
    passwords_by_password: Password = passwords.password [String], |r| Some(r.password.clone());
    password_rewards_by_password: PasswordReward = password_rewards.password [String], |r| Some(r.password.clone());
    password_rewards_by_item: PasswordReward = password_rewards.item_id [i64], |r| r.item_id;
    backgrounds_by_cost: ProfileBackground = profile_backgrounds.cost_item_id [i64], |r| r.cost_item_id;
    details_by_item: ItemDetail = item_details.item_id [i64], |r| Some(r.item_id);
    sources_by_item: ItemSource = item_sources.item_id [i64], |r| Some(r.item_id);
    sources_by_location: ItemSource = item_sources.location_id [i64], |r| Some(r.location_id);
}

/// Every row related to `key` through `loader` (none is an empty list).
pub async fn many<R, K>(loader: &Arc<Batcher<R, K>>, key: K) -> async_graphql::Result<Vec<R>>
where
    R: RowKey,
    K: Clone + Eq + Hash + 'static,
{
    loader.load(key).await.map_err(|error| super::errors::database(error.as_str()))
}

/// The row related to `key`, if any (`None` keys load nothing).
pub async fn one<R, K>(loader: &Arc<Batcher<R, K>>, key: Option<K>) -> async_graphql::Result<Option<R>>
where
    R: RowKey,
    K: Clone + Eq + Hash + 'static,
{
    let Some(key) = key else { return Ok(None) };
    Ok(many(loader, key).await?.into_iter().next())
}
