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

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use tokio::sync::oneshot;

use super::entity::{Entity, Projection};
use crate::db::Database;

/// Fetches the rows whose batching column is one of `keys`; `columns` are those the batch's
/// queries read (a fetch may still load whole rows).
pub type Fetch<R, K> = fn(Database, Vec<K>, Projection) -> BoxFuture<'static, Result<Vec<R>, String>>;

/// Keys per `IN (…)`: far below SQLite's and PostgreSQL's bound-parameter limits.
const KEYS_PER_STATEMENT: usize = 10_000;

type Reply<R> = oneshot::Sender<Result<Vec<R>, Arc<String>>>;

struct Pending<R, K> {
    waiters: Vec<(K, Reply<R>)>,
    /// Every column a waiter's query reads.
    columns: Projection,
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

/// Orders rows by their key columns, numbers as numbers (`9` before `10`), so related lists
/// come out the same on every backend.
fn by_key<R: Entity>(a: &R, b: &R) -> std::cmp::Ordering {
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
    R: Entity,
    K: Clone + Eq + Hash + Send + 'static,
{
    pub fn new(db: &Database, fetch: Fetch<R, K>, key: fn(&R) -> Option<K>) -> Arc<Self> {
        Arc::new(Self {
            db: db.clone(),
            fetch,
            key,
            pending: Mutex::new(Pending {
                waiters: Vec::new(),
                columns: Projection::default(),
                asked: 0,
                scheduled: false,
            }),
        })
    }

    /// The rows related to `key` (none is an empty list), reading at least `columns`.
    pub async fn load(self: &Arc<Self>, key: K, columns: &Projection) -> Result<Vec<R>, Arc<String>> {
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            pending.waiters.push((key, reply));
            pending.columns.add(columns);
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
        let (waiters, columns) = {
            let mut pending = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            pending.scheduled = false;
            (std::mem::take(&mut pending.waiters), std::mem::take(&mut pending.columns))
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
            match (self.fetch)(self.db.clone(), chunk.to_vec(), columns.clone()).await {
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

/// How a relation reaches its rows: the batching column of the target table, which target
/// columns the relation reads besides the selected ones, the fetch and the key of a fetched row.
pub struct Via<R, K> {
    /// The target column the batch filters on (`… WHERE column IN (…)`).
    pub column: &'static str,
    /// Target columns the relation itself reads: the batching column and any it narrows on.
    pub reads: &'static [&'static str],
    pub fetch: Fetch<R, K>,
    pub key_of: fn(&R) -> Option<K>,
}

/// The batchers of one request, made as relations first ask for them: one per target row type
/// and batching column, so every relation reaching the same rows the same way shares a batch.
pub struct Loaders {
    db: Database,
    batchers: Mutex<HashMap<BatcherSlot, Arc<dyn Any + Send + Sync>>>,
}

/// A batcher's type (its row and key types) and its batching column.
type BatcherSlot = (TypeId, &'static str);

impl Loaders {
    pub fn new(db: &Database) -> Self {
        Self { db: db.clone(), batchers: Mutex::new(HashMap::new()) }
    }

    fn batcher<R, K>(&self, via: &Via<R, K>) -> Arc<Batcher<R, K>>
    where
        R: Entity,
        K: Clone + Eq + Hash + Send + Sync + 'static,
    {
        let mut batchers = self.batchers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let slot = batchers
            .entry((TypeId::of::<Batcher<R, K>>(), via.column))
            .or_insert_with(|| Batcher::new(&self.db, via.fetch, via.key_of) as Arc<dyn Any + Send + Sync>);
        match slot.clone().downcast::<Batcher<R, K>>() {
            Ok(batcher) => batcher,
            // The slot is keyed by the batcher's own type, so this cannot differ; a fresh
            // batcher is still correct, only unshared.
            Err(_) => Batcher::new(&self.db, via.fetch, via.key_of),
        }
    }

    /// Every row related to `key` through `via` (none is an empty list), reading `columns`.
    pub async fn many<R, K>(
        &self,
        via: &Via<R, K>,
        key: Option<K>,
        columns: &Projection,
    ) -> async_graphql::Result<Vec<R>>
    where
        R: Entity,
        K: Clone + Eq + Hash + Send + Sync + 'static,
    {
        let Some(key) = key else { return Ok(Vec::new()) };
        self.batcher(via).load(key, columns).await.map_err(|error| super::errors::database(error.as_str()))
    }
}
