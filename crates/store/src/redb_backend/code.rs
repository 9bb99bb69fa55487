//! [`CodeStore`] on redb.

use std::sync::Arc;

use redb::{ReadableDatabase, ReadableTable};
use serde::{Deserialize, Serialize};

use super::{
    blocking, from_json, to_json, Shared, CODE_BUNDLES, CODE_COUNTERS, CODE_FUNCTIONS,
    CODE_VERSIONS,
};
use crate::code::{
    validate_deploy, validate_function_id, CodeStore, CodeVersion, FunctionInfo, VersionInfo,
};
use crate::error::StoreError;

/// One function's row in `code_functions`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct FunctionRecord {
    live: u64,
    latest: u64,
    versions: u64,
    created_at: u64,
    updated_at: u64,
}

/// One version's row in `code_versions`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct VersionRecord {
    created_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    size: u64,
}

/// The code store of a [`super::RedbBackend`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RedbCodeStore {
    shared: Arc<Shared>,
}

impl RedbCodeStore {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        RedbCodeStore { shared }
    }

    fn function_record(
        table: &impl ReadableTable<&'static str, &'static [u8]>,
        id: &str,
    ) -> Result<Option<FunctionRecord>, StoreError> {
        match table.get(id)? {
            None => Ok(None),
            Some(guard) => from_json(guard.value(), "function record").map(Some),
        }
    }

    fn read_version(
        txn: &redb::ReadTransaction,
        id: &str,
        version: u64,
    ) -> Result<Option<CodeVersion>, StoreError> {
        let versions = txn.open_table(CODE_VERSIONS)?;
        let Some(record) = versions.get((id, version))? else {
            return Ok(None);
        };
        let record: VersionRecord = from_json(record.value(), "version record")?;
        let bundles = txn.open_table(CODE_BUNDLES)?;
        let bundle = bundles
            .get((id, version))?
            .ok_or_else(|| StoreError::corrupt(format!("bundle of {id} v{version} is missing")))?
            .value()
            .to_vec();
        Ok(Some(CodeVersion {
            version,
            created_at: record.created_at,
            note: record.note,
            bundle,
        }))
    }

    fn info_of(id: &str, record: &FunctionRecord) -> FunctionInfo {
        FunctionInfo {
            id: id.to_owned(),
            live_version: record.live,
            versions: record.versions,
            latest_version: record.latest,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }

    /// Runs `choose` on the function's record inside a write transaction to
    /// pick the version to make live, then makes it live.
    fn switch_live(
        &self,
        id: &str,
        choose: impl FnOnce(
            &redb::Table<'_, (&'static str, u64), &'static [u8]>,
            &FunctionRecord,
        ) -> Result<u64, StoreError>,
    ) -> Result<u64, StoreError> {
        validate_function_id(id)?;
        let now = self.shared.clock.now_ms();
        let txn = self.shared.db.begin_write()?;
        let chosen = {
            let mut functions = txn.open_table(CODE_FUNCTIONS)?;
            let versions = txn.open_table(CODE_VERSIONS)?;
            let mut record = Self::function_record(&functions, id)?
                .ok_or_else(|| StoreError::FunctionNotFound { id: id.to_owned() })?;
            let chosen = choose(&versions, &record)?;
            record.live = chosen;
            record.updated_at = now;
            functions.insert(id, to_json(&record)?.as_slice())?;
            chosen
        };
        txn.commit()?;
        Ok(chosen)
    }
}

impl RedbCodeStore {
    fn deploy_blocking(
        &self,
        id: &str,
        bundle: &[u8],
        note: Option<&str>,
    ) -> Result<u64, StoreError> {
        validate_function_id(id)?;
        validate_deploy(bundle, note)?;
        let now = self.shared.clock.now_ms();
        let txn = self.shared.db.begin_write()?;
        let version = {
            let mut counters = txn.open_table(CODE_COUNTERS)?;
            let mut functions = txn.open_table(CODE_FUNCTIONS)?;
            let mut versions = txn.open_table(CODE_VERSIONS)?;
            let mut bundles = txn.open_table(CODE_BUNDLES)?;

            let last = counters.get(id)?.map(|v| v.value()).unwrap_or(0);
            let version = last
                .checked_add(1)
                .ok_or_else(|| StoreError::corrupt(format!("version counter of {id} is full")))?;
            let size = u64::try_from(bundle.len()).unwrap_or(u64::MAX);
            let record = VersionRecord {
                created_at: now,
                note: note.map(str::to_owned),
                size,
            };
            versions.insert((id, version), to_json(&record)?.as_slice())?;
            bundles.insert((id, version), bundle)?;
            counters.insert(id, version)?;

            let function = match Self::function_record(&functions, id)? {
                Some(existing) => FunctionRecord {
                    live: version,
                    latest: version,
                    versions: existing.versions.saturating_add(1),
                    created_at: existing.created_at,
                    updated_at: now,
                },
                None => FunctionRecord {
                    live: version,
                    latest: version,
                    versions: 1,
                    created_at: now,
                    updated_at: now,
                },
            };
            functions.insert(id, to_json(&function)?.as_slice())?;
            version
        };
        txn.commit()?;
        Ok(version)
    }

    fn live_blocking(&self, id: &str) -> Result<Option<CodeVersion>, StoreError> {
        validate_function_id(id)?;
        let txn = self.shared.db.begin_read()?;
        let functions = txn.open_table(CODE_FUNCTIONS)?;
        match Self::function_record(&functions, id)? {
            None => Ok(None),
            Some(record) => Self::read_version(&txn, id, record.live),
        }
    }

    fn live_version_blocking(&self, id: &str) -> Result<Option<u64>, StoreError> {
        validate_function_id(id)?;
        let txn = self.shared.db.begin_read()?;
        let functions = txn.open_table(CODE_FUNCTIONS)?;
        Ok(Self::function_record(&functions, id)?.map(|r| r.live))
    }

    fn get_version_blocking(
        &self,
        id: &str,
        version: u64,
    ) -> Result<Option<CodeVersion>, StoreError> {
        validate_function_id(id)?;
        let txn = self.shared.db.begin_read()?;
        Self::read_version(&txn, id, version)
    }

    fn versions_blocking(&self, id: &str) -> Result<Vec<VersionInfo>, StoreError> {
        validate_function_id(id)?;
        let txn = self.shared.db.begin_read()?;
        let functions = txn.open_table(CODE_FUNCTIONS)?;
        let Some(function) = Self::function_record(&functions, id)? else {
            return Ok(Vec::new());
        };
        let versions = txn.open_table(CODE_VERSIONS)?;
        let mut out = Vec::new();
        for entry in versions.range((id, 0)..=(id, u64::MAX))? {
            let (key, value) = entry?;
            let version = key.value().1;
            let record: VersionRecord = from_json(value.value(), "version record")?;
            out.push(VersionInfo {
                version,
                created_at: record.created_at,
                note: record.note,
                size: record.size,
                live: version == function.live,
            });
        }
        Ok(out)
    }

    fn info_blocking(&self, id: &str) -> Result<Option<FunctionInfo>, StoreError> {
        validate_function_id(id)?;
        let txn = self.shared.db.begin_read()?;
        let functions = txn.open_table(CODE_FUNCTIONS)?;
        Ok(Self::function_record(&functions, id)?.map(|r| Self::info_of(id, &r)))
    }

    fn list_blocking(&self) -> Result<Vec<FunctionInfo>, StoreError> {
        let txn = self.shared.db.begin_read()?;
        let functions = txn.open_table(CODE_FUNCTIONS)?;
        let mut out = Vec::new();
        for entry in functions.iter()? {
            let (key, value) = entry?;
            let record: FunctionRecord = from_json(value.value(), "function record")?;
            out.push(Self::info_of(key.value(), &record));
        }
        Ok(out)
    }

    fn rollback_blocking(&self, id: &str) -> Result<u64, StoreError> {
        self.switch_live(id, |versions, record| {
            let previous = versions.range((id, 0)..(id, record.live))?.next_back();
            match previous {
                Some(entry) => Ok(entry?.0.value().1),
                None => Err(StoreError::NoPreviousVersion {
                    id: id.to_owned(),
                    live_version: record.live,
                }),
            }
        })
    }

    fn set_live_blocking(&self, id: &str, version: u64) -> Result<(), StoreError> {
        self.switch_live(id, |versions, _| {
            if versions.get((id, version))?.is_some() {
                Ok(version)
            } else {
                Err(StoreError::VersionNotFound {
                    id: id.to_owned(),
                    version,
                })
            }
        })
        .map(|_| ())
    }

    fn delete_blocking(&self, id: &str) -> Result<bool, StoreError> {
        validate_function_id(id)?;
        let txn = self.shared.db.begin_write()?;
        let existed = {
            let mut functions = txn.open_table(CODE_FUNCTIONS)?;
            let mut versions = txn.open_table(CODE_VERSIONS)?;
            let mut bundles = txn.open_table(CODE_BUNDLES)?;
            let existed = functions.remove(id)?.is_some();
            versions.retain_in((id, 0)..=(id, u64::MAX), |_, _| false)?;
            bundles.retain_in((id, 0)..=(id, u64::MAX), |_, _| false)?;
            existed
        };
        txn.commit()?;
        Ok(existed)
    }
}

#[async_trait::async_trait]
impl CodeStore for RedbCodeStore {
    async fn deploy(
        &self,
        id: &str,
        bundle: Vec<u8>,
        note: Option<&str>,
    ) -> Result<u64, StoreError> {
        let (this, id, note) = (self.clone(), id.to_owned(), note.map(str::to_owned));
        blocking(move || this.deploy_blocking(&id, &bundle, note.as_deref())).await
    }

    async fn live(&self, id: &str) -> Result<Option<CodeVersion>, StoreError> {
        let (this, id) = (self.clone(), id.to_owned());
        blocking(move || this.live_blocking(&id)).await
    }

    async fn live_version(&self, id: &str) -> Result<Option<u64>, StoreError> {
        let (this, id) = (self.clone(), id.to_owned());
        blocking(move || this.live_version_blocking(&id)).await
    }

    async fn get_version(&self, id: &str, version: u64) -> Result<Option<CodeVersion>, StoreError> {
        let (this, id) = (self.clone(), id.to_owned());
        blocking(move || this.get_version_blocking(&id, version)).await
    }

    async fn versions(&self, id: &str) -> Result<Vec<VersionInfo>, StoreError> {
        let (this, id) = (self.clone(), id.to_owned());
        blocking(move || this.versions_blocking(&id)).await
    }

    async fn info(&self, id: &str) -> Result<Option<FunctionInfo>, StoreError> {
        let (this, id) = (self.clone(), id.to_owned());
        blocking(move || this.info_blocking(&id)).await
    }

    async fn list(&self) -> Result<Vec<FunctionInfo>, StoreError> {
        let this = self.clone();
        blocking(move || this.list_blocking()).await
    }

    async fn rollback(&self, id: &str) -> Result<u64, StoreError> {
        let (this, id) = (self.clone(), id.to_owned());
        blocking(move || this.rollback_blocking(&id)).await
    }

    async fn set_live(&self, id: &str, version: u64) -> Result<(), StoreError> {
        let (this, id) = (self.clone(), id.to_owned());
        blocking(move || this.set_live_blocking(&id, version)).await
    }

    async fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let (this, id) = (self.clone(), id.to_owned());
        blocking(move || this.delete_blocking(&id)).await
    }
}
