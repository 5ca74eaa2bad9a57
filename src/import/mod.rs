//! `hayloft import FILE…`: the migration path from the original system. Its database dumps
//! (Django `dumpdata` JSON, plus its exchange-center log and password list) become rows of the
//! tables Hayloft keeps them in ([`models`]), so a Hayloft site has the history the old one had.
//!
//! An import is a pipeline like any other, run once: a supervised reader → mapper → loader chain
//! whose run is a ledger row with trigger `import`, loaded in one transaction with its change
//! feed, behind the run's claim. It is idempotent: a second import of the same files writes
//! nothing. What it cannot map (a model no table holds, a record naming an item not stored yet)
//! is counted and named in the run's notes, never dropped silently; a file that cannot be read
//! fails the run before anything is written.

pub mod dump;
pub mod models;
pub mod rows;

use std::path::PathBuf;

use async_trait::async_trait;
use diesel::QueryDsl as _;
use hayloft_actors::pipeline::{
    pipeline, Extract, Load, LoadReport, PipelineDeps, PipelineHandle, RunContext, StageCounters, StageError, Transform,
};
use hayloft_actors::supervisor::ChildSpec;
use sha2::{Digest as _, Sha256};

use crate::db::schema::items;
use crate::db::{with_conn, Database, DbError};
use crate::pipelines::npcs::{NpcReward, NpcRewardItem};
use crate::pipelines::pets::{Pet, PetItem};
use crate::pipelines::shared::common::DeleteGuard;
use crate::pipelines::shared::names::Names;
use crate::pipelines::shared::table::{load_dataset, stage_error, Dataset, StoredRow as _};
use dump::DumpFile;
use models::Stored;

/// The pipeline name import runs are recorded under.
pub const NAME: &str = "import";

/// Reads the files and what the mapping compares them with.
struct ReadDumps {
    paths: Vec<PathBuf>,
    db: Database,
}

struct Read {
    files: Vec<DumpFile>,
    stored: Stored,
}

#[async_trait(?Send)]
impl Extract for ReadDumps {
    type Output = Read;

    async fn extract(&self, _run: &RunContext, counters: &StageCounters) -> Result<Read, StageError> {
        let mut files = Vec::with_capacity(self.paths.len());
        for path in &self.paths {
            let path = path.clone();
            // Files may be large: read and parsed off the actor's thread.
            let read = tokio::task::spawn_blocking(move || dump::read(&path)).await;
            let file = read
                .map_err(|error| StageError::BadInput(format!("reading a dump file failed: {error}")))?
                .map_err(|error| StageError::BadInput(error.to_string()))?;
            counters.emitted(file.records.len() as u64);
            files.push(file);
        }
        let stored = read_stored(&self.db).await.map_err(stage_error)?;
        Ok(Read { files, stored })
    }
}

async fn read_stored(db: &Database) -> Result<Stored, DbError> {
    let item_names: Vec<(i64, String)> = with_conn!(db, readers, |conn| {
        items::table.select((items::id, items::name)).load(conn).await.map_err(DbError::Query)
    })?;
    Ok(Stored {
        names: Names::load(db).await?,
        item_names: item_names.into_iter().collect(),
        pets: Pet::read_all(db).await?,
        pet_items: PetItem::read_all(db).await?,
        npc_rewards: NpcReward::read_all(db).await?,
        npc_reward_items: NpcRewardItem::read_all(db).await?,
    })
}

/// Maps the records onto rows.
struct MapDumps;

struct Mapped {
    dataset: Dataset,
    fingerprint: String,
}

impl Transform for MapDumps {
    type Input = Read;
    type Output = Mapped;

    fn transform(&self, input: Read, _run: &RunContext, counters: &StageCounters) -> Result<Mapped, StageError> {
        let mut hasher = Sha256::new();
        let mut records = Vec::new();
        let mut notes = Vec::new();
        for file in input.files {
            hasher.update(file.path.as_bytes());
            hasher.update(&file.body);
            notes.push(format!("{}: {} records", file.path, file.records.len()));
            records.extend(file.records);
        }
        let mapped = models::map(&records, &input.stored).map_err(StageError::BadInput)?;
        counters.emitted(mapped.read);
        counters.dropped(mapped.skipped);
        let fingerprint = hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect();
        let mut dataset = mapped.dataset;
        dataset.notes.splice(0..0, notes);
        Ok(Mapped { dataset, fingerprint })
    }
}

/// Writes the rows, the change feed and the files' fingerprint in one transaction.
struct StoreDumps {
    db: Database,
}

#[async_trait(?Send)]
impl Load for StoreDumps {
    type Input = Mapped;

    async fn load(&self, input: Mapped, run: &RunContext, _counters: &StageCounters) -> Result<LoadReport, StageError> {
        // Nothing is deleted (every table is history), so the delete guard has nothing to watch.
        load_dataset(&self.db, input.dataset, input.fingerprint, run, &DeleteGuard::OFF, NAME, None).await
    }
}

/// The supervised chain importing `paths`, for one run with [`hayloft_actors::ledger::Trigger::Import`].
pub fn build(paths: Vec<PathBuf>, db: &Database, deps: PipelineDeps) -> (ChildSpec, PipelineHandle) {
    pipeline(NAME, ReadDumps { paths, db: db.clone() }, MapDumps, StoreDumps { db: db.clone() }, deps)
}
