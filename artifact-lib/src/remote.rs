//! `push`, `pull` and `list --remote`: archives in an object store (S3 and S3-compatible stores,
//! Google Cloud Storage, Azure Blob Storage, or a folder via `file://`), through the
//! `object_store` crate.
//!
//! Layout under the URL's prefix, the same names as in `artifacts/packages`:
//! `NAME.tar.gz`, `NAME_metadata.json`, and for split archives `NAME.tar.gz.part_*` and
//! `NAME.tar.gz.parts.json`. The sidecar goes up last, so a sidecar on the remote means its
//! archive is complete. Integrity rests on our own SHA-256 (sidecar and parts listing), never on
//! ETags. Credentials come only from each cloud's standard environment variables and files and
//! are never printed.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use object_store::path::Path as Key;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, WriteMultipart};
use serde::Serialize;

use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::hash;
use crate::manifest::{self, Sidecar};
use crate::progress::Progress;
use crate::split::{self, PartsListing};

/// Objects at most this large go up in one request; larger ones in parallel multipart uploads.
const SINGLE_PUT_LIMIT: u64 = 16 << 20;
/// Multipart chunk size (S3 wants at least 5 MiB per part).
const PART_SIZE: usize = 16 << 20;
/// Multipart chunks in flight at once.
const UPLOAD_CONCURRENCY: usize = 4;

/// An object store location: a bucket (or folder) and a prefix inside it.
pub struct Remote {
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: Key,
    runtime: tokio::runtime::Runtime,
}

/// What `push` did, object by object.
#[derive(Debug, Default)]
pub struct PushReport {
    /// Objects uploaded, with their sizes.
    pub sent: Vec<(String, u64)>,
    /// Objects already on the remote with the same SHA-256.
    pub unchanged: Vec<String>,
}

/// What `pull` did.
#[derive(Debug)]
pub struct PullReport {
    /// The archive (or, for a split archive, its first part) now in the output folder.
    pub archive_path: PathBuf,
    /// Bytes downloaded in this run.
    pub downloaded: u64,
    /// Bytes a previous, interrupted pull had already fetched and this one kept.
    pub resumed: u64,
    /// Whether the archive was already present and verified, so nothing was downloaded.
    pub already_present: bool,
}

/// One archive on the remote, from its sidecar.
#[derive(Debug, Clone, Serialize)]
pub struct RemoteEntry {
    /// Experiment name.
    pub experiment_name: String,
    /// Archive file name.
    pub archive: String,
    /// Archive size in bytes (whole, or all parts).
    pub size_bytes: u64,
    /// Whether model weights are inside.
    pub includes_models: bool,
    /// Whether it is stored as parts.
    pub split: bool,
    /// The archive's SHA-256.
    pub sha256: String,
    /// When it was packaged.
    pub created_at: String,
}

fn store_error(url: &str, what: &str, err: object_store::Error) -> Error {
    Error::Invalid(format!("remote {url}: {what}: {err}"))
}

fn is_not_found(err: &object_store::Error) -> bool {
    matches!(err, object_store::Error::NotFound { .. })
}

impl Remote {
    /// Opens `url`: `s3://bucket/prefix` (AWS, or any S3-compatible store through
    /// `AWS_ENDPOINT_URL`; plain `http://` endpoints are allowed), `gs://bucket/prefix`,
    /// `az://container/prefix`, or `file:///folder`.
    pub fn open(url: &str) -> Result<Remote> {
        let parsed = url::Url::parse(url).map_err(|err| {
            Error::Invalid(format!(
                "`{url}` is not a remote URL ({err}); use s3://bucket/prefix, gs://, az:// or file:///path"
            ))
        })?;
        let bad = |err: object_store::Error| Error::Invalid(format!("remote {url}: {err}"));
        let key_prefix = || Key::from(parsed.path().trim_matches('/'));
        let (store, prefix): (Arc<dyn ObjectStore>, Key) = match parsed.scheme() {
            "s3" | "s3a" => {
                let mut builder = object_store::aws::AmazonS3Builder::from_env().with_url(url);
                let endpoint = std::env::var("AWS_ENDPOINT_URL")
                    .or_else(|_| std::env::var("AWS_ENDPOINT"))
                    .unwrap_or_default();
                if endpoint.starts_with("http://") {
                    builder = builder.with_allow_http(true);
                }
                (Arc::new(builder.build().map_err(bad)?), key_prefix())
            }
            "gs" => {
                let builder =
                    object_store::gcp::GoogleCloudStorageBuilder::from_env().with_url(url);
                (Arc::new(builder.build().map_err(bad)?), key_prefix())
            }
            "az" | "azure" | "abfs" | "abfss" => {
                let builder = object_store::azure::MicrosoftAzureBuilder::from_env().with_url(url);
                (Arc::new(builder.build().map_err(bad)?), key_prefix())
            }
            "file" => {
                let folder = parsed.to_file_path().map_err(|()| {
                    Error::Invalid(format!(
                        "`{url}` is not a usable file:// URL; use file:///absolute/path"
                    ))
                })?;
                std::fs::create_dir_all(&folder).at("creating", &folder)?;
                let store =
                    object_store::local::LocalFileSystem::new_with_prefix(&folder).map_err(bad)?;
                (Arc::new(store), Key::default())
            }
            other => {
                return Err(Error::Invalid(format!(
                "remote URL scheme `{other}:` is not supported; use s3://, gs://, az:// or file://"
            )))
            }
        };
        Remote::with_store(url, store, prefix)
    }

    /// A remote over an object store the caller built (a dashboard with its own credentials, or
    /// a test double); `url` only names it in messages.
    pub fn with_store(url: &str, store: Arc<dyn ObjectStore>, prefix: Key) -> Result<Remote> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|err| {
                Error::io("starting the network runtime for", PathBuf::from(url), err)
            })?;
        Ok(Remote {
            url: url.trim_end_matches('/').to_string(),
            store,
            prefix,
            runtime,
        })
    }

    fn key(&self, name: &str) -> Key {
        self.prefix.clone().join(name)
    }

    /// The object's bytes, or `None` when it does not exist.
    fn get_small(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let key = self.key(name);
        self.runtime.block_on(async {
            match self.store.get(&key).await {
                Ok(result) => Ok(Some(
                    result
                        .bytes()
                        .await
                        .map_err(|e| store_error(&self.url, name, e))?
                        .to_vec(),
                )),
                Err(err) if is_not_found(&err) => Ok(None),
                Err(err) => Err(store_error(&self.url, name, err)),
            }
        })
    }

    /// The object's size, or `None` when it does not exist.
    fn size_of(&self, name: &str) -> Result<Option<u64>> {
        let key = self.key(name);
        self.runtime.block_on(async {
            match self.store.head(&key).await {
                Ok(meta) => Ok(Some(meta.size)),
                Err(err) if is_not_found(&err) => Ok(None),
                Err(err) => Err(store_error(&self.url, name, err)),
            }
        })
    }

    fn put_small(&self, name: &str, bytes: Vec<u8>) -> Result<()> {
        let key = self.key(name);
        self.runtime.block_on(async {
            self.store
                .put(&key, bytes.into())
                .await
                .map(|_| ())
                .map_err(|e| store_error(&self.url, name, e))
        })
    }

    /// Uploads a local file: one request when small, parallel multipart otherwise.
    fn upload(&self, local: &Path, name: &str, progress: &dyn Progress) -> Result<u64> {
        let size = local.metadata().at("reading", local)?.len();
        if size <= SINGLE_PUT_LIMIT {
            let bytes = std::fs::read(local).at("reading", local)?;
            self.put_small(name, bytes)?;
            progress.advance(size);
            return Ok(size);
        }
        let key = self.key(name);
        let mut file = File::open(local).at("opening", local)?;
        self.runtime.block_on(async {
            let upload = self
                .store
                .put_multipart(&key)
                .await
                .map_err(|e| store_error(&self.url, name, e))?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            let mut buffer = vec![0u8; hash::IO_BUFFER];
            loop {
                let n = match file.read(&mut buffer) {
                    Ok(n) => n,
                    Err(err) => {
                        let _ = writer.abort().await;
                        return Err(Error::io("reading", local, err));
                    }
                };
                if n == 0 {
                    break;
                }
                if let Err(err) = writer.wait_for_capacity(UPLOAD_CONCURRENCY).await {
                    return Err(store_error(&self.url, name, err));
                }
                writer.write(&buffer[..n]);
                progress.advance(n as u64);
            }
            writer
                .finish()
                .await
                .map_err(|e| store_error(&self.url, name, e))?;
            Ok(size)
        })
    }

    /// Uploads the archive `archive` (its parts when split), its parts listing and its sidecar.
    /// Objects already on the remote with the same SHA-256 (by the remote's own sidecar and
    /// parts listing) and size are not sent again, unless `force`. The sidecar goes last.
    pub fn push(&self, archive: &Path, force: bool, progress: &dyn Progress) -> Result<PushReport> {
        if !archive.is_file() && !split::listing_path(archive).is_file() {
            return Err(Error::Invalid(format!(
                "no archive {} (nor its parts); package the experiment first with `cargo xtask package`",
                archive.display()
            )));
        }
        let sidecar_path = manifest::sidecar_path(archive);
        let sidecar_bytes = std::fs::read(&sidecar_path).map_err(|_| {
            Error::Invalid(format!(
                "{} has no sidecar ({}); package it with `cargo xtask package` first",
                archive.display(),
                sidecar_path.display()
            ))
        })?;
        let sidecar = Sidecar::read(&sidecar_path)?;
        let archive_name = file_name(archive);
        let sidecar_name = file_name(&sidecar_path);
        let remote_sidecar = self
            .get_small(&sidecar_name)?
            .and_then(|bytes| serde_json::from_slice::<Sidecar>(&bytes).ok())
            .filter(|_| !force);
        let listing_path = split::listing_path(archive);
        let listing = listing_path
            .is_file()
            .then(|| PartsListing::read(&listing_path))
            .transpose()?;
        let mut report = PushReport::default();

        let total: u64 = if archive.is_file() {
            archive.metadata().map(|m| m.len()).unwrap_or(0)
        } else {
            listing.as_ref().map_or(0, |l| l.size_bytes)
        };
        progress.begin(&format!("pushing {archive_name}"), total);
        if archive.is_file() {
            let same = remote_sidecar
                .as_ref()
                .is_some_and(|r| r.checksum == sidecar.checksum)
                && self.size_of(&archive_name)? == archive.metadata().ok().map(|m| m.len());
            if same {
                report.unchanged.push(archive_name.clone());
                progress.advance(total);
            } else {
                let sent = self.upload(archive, &archive_name, progress)?;
                report.sent.push((archive_name.clone(), sent));
            }
        } else if listing.is_none() {
            return Err(Error::Invalid(format!(
                "{} does not exist (and has no parts.json)",
                archive.display()
            )));
        }
        if let Some(listing) = &listing {
            let listing_name = file_name(&listing_path);
            let remote_listing = self
                .get_small(&listing_name)?
                .and_then(|bytes| serde_json::from_slice::<PartsListing>(&bytes).ok())
                .filter(|_| !force);
            for part in &listing.parts {
                let local = fsutil::parent_dir(archive).join(&part.name);
                if !local.is_file() {
                    continue;
                }
                let remote_has = remote_listing
                    .as_ref()
                    .and_then(|r| r.parts.iter().find(|p| p.name == part.name))
                    .is_some_and(|p| p.sha256 == part.sha256)
                    && self.size_of(&part.name)? == Some(part.size_bytes);
                if remote_has {
                    report.unchanged.push(part.name.clone());
                } else {
                    let sent = self.upload(&local, &part.name, progress)?;
                    report.sent.push((part.name.clone(), sent));
                }
            }
            let bytes = std::fs::read(&listing_path).at("reading", &listing_path)?;
            if remote_listing.as_ref() == Some(listing) {
                report.unchanged.push(listing_name);
            } else {
                report.sent.push((listing_name.clone(), bytes.len() as u64));
                self.put_small(&listing_name, bytes)?;
            }
        }
        progress.finish();
        if remote_sidecar.as_ref() == Some(&sidecar) {
            report.unchanged.push(sidecar_name);
        } else {
            report
                .sent
                .push((sidecar_name.clone(), sidecar_bytes.len() as u64));
            self.put_small(&sidecar_name, sidecar_bytes)?;
        }
        Ok(report)
    }

    /// Downloads experiment `name`'s archive into `output_dir`, verified against the remote
    /// sidecar's SHA-256 (or, for a split archive, every part against the remote parts listing).
    ///
    /// Bytes go to `NAME.tar.gz.<sha>.download` first; an interrupted pull resumes from it with a
    /// ranged read, and restarts from zero when the store ignores the range. Only a file whose
    /// SHA-256 matches is renamed into place; a mismatch deletes the download and fails.
    pub fn pull(
        &self,
        name: &str,
        output_dir: &Path,
        progress: &dyn Progress,
    ) -> Result<PullReport> {
        let sidecar_name = format!("{name}_metadata.json");
        let sidecar_bytes = self.get_small(&sidecar_name)?.ok_or_else(|| {
            Error::Invalid(format!(
                "`{name}` is not on the remote: no {sidecar_name} under {} (see `cargo xtask list --remote {}`)",
                self.url, self.url
            ))
        })?;
        let sidecar: Sidecar = serde_json::from_slice(&sidecar_bytes).map_err(|err| {
            Error::Invalid(format!(
                "remote {}: {sidecar_name} is not a valid sidecar: {err}",
                self.url
            ))
        })?;
        std::fs::create_dir_all(output_dir).at("creating", output_dir)?;
        let archive_name = format!("{name}.tar.gz");
        let archive_path = output_dir.join(&archive_name);
        let mut report = PullReport {
            archive_path: archive_path.clone(),
            downloaded: 0,
            resumed: 0,
            already_present: false,
        };
        let local_sidecar = manifest::sidecar_path(&archive_path);
        if archive_path.is_file()
            && Sidecar::read(&local_sidecar).is_ok_and(|local| local.checksum == sidecar.checksum)
            && hash::sha256_file(&archive_path)?.0 == sidecar.checksum
        {
            report.already_present = true;
            return Ok(report);
        }
        if let Some(size) = self.size_of(&archive_name)? {
            progress.begin(&format!("pulling {archive_name}"), size);
            let (downloaded, resumed) = self.download_verified(
                &archive_name,
                &archive_path,
                &sidecar.checksum,
                size,
                progress,
            )?;
            progress.finish();
            report.downloaded += downloaded;
            report.resumed += resumed;
        } else {
            let listing_name = format!("{archive_name}.parts.json");
            let listing_bytes = self.get_small(&listing_name)?.ok_or_else(|| {
                Error::Invalid(format!(
                    "remote {}: {sidecar_name} is there but neither {archive_name} nor {listing_name}; push it again",
                    self.url
                ))
            })?;
            let listing: PartsListing = serde_json::from_slice(&listing_bytes).map_err(|err| {
                Error::Invalid(format!(
                    "remote {}: {listing_name} is not valid: {err}",
                    self.url
                ))
            })?;
            progress.begin(
                &format!("pulling {archive_name} in parts"),
                listing.size_bytes,
            );
            for part in &listing.parts {
                let local = output_dir.join(&part.name);
                let (downloaded, resumed) = self.download_verified(
                    &part.name,
                    &local,
                    &part.sha256,
                    part.size_bytes,
                    progress,
                )?;
                report.downloaded += downloaded;
                report.resumed += resumed;
            }
            progress.finish();
            fsutil::write_atomically(&split::listing_path(&archive_path), &listing_bytes)?;
            report.archive_path = split::part_path(&archive_path, 0);
        }
        fsutil::write_atomically(&local_sidecar, &sidecar_bytes)?;
        Ok(report)
    }

    /// Downloads object `name` to `destination` through a resumable `.download` file; returns
    /// (bytes downloaded now, bytes kept from an earlier attempt).
    fn download_verified(
        &self,
        name: &str,
        destination: &Path,
        expected_sha: &str,
        expected_size: u64,
        progress: &dyn Progress,
    ) -> Result<(u64, u64)> {
        use sha2::Digest;
        let partial = destination.with_file_name(format!(
            "{}.{}.download",
            file_name(destination),
            &expected_sha[..expected_sha.len().min(16)]
        ));
        let mut have = partial.metadata().map(|m| m.len()).unwrap_or(0);
        if have > expected_size {
            std::fs::remove_file(&partial).at("removing", &partial)?;
            have = 0;
        }
        // Hash what an earlier attempt fetched; the download continues after it.
        let mut hasher = sha2::Sha256::new();
        if have > 0 {
            let mut earlier = File::open(&partial).at("opening", &partial)?.take(have);
            let mut buffer = vec![0u8; hash::IO_BUFFER];
            loop {
                let n = earlier.read(&mut buffer).at("reading", &partial)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buffer[..n]);
            }
            progress.advance(have);
        }
        let key = self.key(name);
        let (downloaded, kept, sha) = self.runtime.block_on(async {
            let mut file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&partial)
                .at("opening", &partial)?;
            let mut kept = have;
            let mut downloaded = 0u64;
            if have < expected_size || expected_size == 0 {
                let options = GetOptions {
                    range: (have > 0).then_some(GetRange::Offset(have)),
                    ..GetOptions::default()
                };
                let result = self
                    .store
                    .get_opts(&key, options)
                    .await
                    .map_err(|e| store_error(&self.url, name, e))?;
                if result.range.start != have {
                    // The store ignored the range and sent the whole object: start over.
                    kept = 0;
                    hasher = sha2::Sha256::new();
                }
                file.set_len(kept).at("truncating", &partial)?;
                file.seek(std::io::SeekFrom::Start(kept))
                    .at("seeking", &partial)?;
                let mut stream = result.into_stream();
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|e| store_error(&self.url, name, e))?;
                    file.write_all(&chunk).at("writing", &partial)?;
                    hasher.update(&chunk);
                    downloaded += chunk.len() as u64;
                    progress.advance(chunk.len() as u64);
                }
            }
            file.sync_all().at("syncing", &partial)?;
            Ok::<_, Error>((downloaded, kept, hash::hex(&hasher.finalize())))
        })?;
        let size = partial.metadata().map(|m| m.len()).unwrap_or(0);
        if sha != expected_sha || size != expected_size {
            let _ = std::fs::remove_file(&partial);
            return Err(Error::Invalid(format!(
                "remote {}: {name} does not match its recorded checksum (SHA-256 {sha}, {size} bytes; expected {expected_sha}, {expected_size} bytes); nothing was kept — push it again from a good copy",
                self.url
            )));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o644));
        }
        std::fs::rename(&partial, destination).at("renaming into place", destination)?;
        Ok((downloaded, kept))
    }

    /// Every archive on the remote, from its sidecar, sorted by name.
    pub fn list(&self) -> Result<Vec<RemoteEntry>> {
        let prefix = self.prefix.clone();
        let metas: Vec<object_store::ObjectMeta> = self.runtime.block_on(async {
            let prefix = (!prefix.as_ref().is_empty()).then_some(&prefix);
            let listing = self
                .store
                .list_with_delimiter(prefix)
                .await
                .map_err(|e| store_error(&self.url, "listing", e))?;
            Ok::<_, Error>(listing.objects)
        })?;
        let names: Vec<String> = metas
            .iter()
            .filter_map(|m| m.location.filename().map(str::to_string))
            .collect();
        let mut entries = Vec::new();
        for name in names.iter().filter(|n| n.ends_with("_metadata.json")) {
            let Some(bytes) = self.get_small(name)? else {
                continue;
            };
            let Ok(sidecar) = serde_json::from_slice::<Sidecar>(&bytes) else {
                continue;
            };
            let archive = format!("{}.tar.gz", name.trim_end_matches("_metadata.json"));
            let split =
                names.contains(&format!("{archive}.parts.json")) && !names.contains(&archive);
            entries.push(RemoteEntry {
                experiment_name: sidecar.experiment_name.clone(),
                size_bytes: sidecar
                    .archive_size_bytes
                    .unwrap_or((sidecar.total_size_mb * 1024.0 * 1024.0) as u64),
                includes_models: sidecar.includes_models,
                split,
                sha256: sidecar.checksum,
                created_at: sidecar.created_at,
                archive,
            });
        }
        entries.sort_by(|a, b| a.archive.cmp(&b.archive));
        Ok(entries)
    }

    /// The URL this remote was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream::BoxStream;
    use object_store::memory::InMemory;
    use object_store::{
        CopyOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, PutMultipartOptions,
        PutOptions, PutPayload, PutResult,
    };

    /// A store that ignores ranged reads and always sends the whole object, as some servers do.
    #[derive(Debug)]
    struct IgnoresRanges(InMemory);

    impl std::fmt::Display for IgnoresRanges {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "IgnoresRanges")
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for IgnoresRanges {
        async fn put_opts(
            &self,
            location: &Key,
            payload: PutPayload,
            opts: PutOptions,
        ) -> object_store::Result<PutResult> {
            self.0.put_opts(location, payload, opts).await
        }
        async fn put_multipart_opts(
            &self,
            location: &Key,
            opts: PutMultipartOptions,
        ) -> object_store::Result<Box<dyn MultipartUpload>> {
            self.0.put_multipart_opts(location, opts).await
        }
        async fn get_opts(
            &self,
            location: &Key,
            mut options: GetOptions,
        ) -> object_store::Result<GetResult> {
            options.range = None;
            self.0.get_opts(location, options).await
        }
        fn delete_stream(
            &self,
            locations: BoxStream<'static, object_store::Result<Key>>,
        ) -> BoxStream<'static, object_store::Result<Key>> {
            self.0.delete_stream(locations)
        }
        fn list(
            &self,
            prefix: Option<&Key>,
        ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
            self.0.list(prefix)
        }
        async fn list_with_delimiter(
            &self,
            prefix: Option<&Key>,
        ) -> object_store::Result<ListResult> {
            self.0.list_with_delimiter(prefix).await
        }
        async fn copy_opts(
            &self,
            from: &Key,
            to: &Key,
            options: CopyOptions,
        ) -> object_store::Result<()> {
            self.0.copy_opts(from, to, options).await
        }
    }

    #[test]
    fn a_store_that_ignores_ranges_restarts_the_download_and_never_corrupts_it() {
        let dir = tempfile::tempdir().unwrap();
        let experiment = dir.path().join("exp");
        std::fs::create_dir_all(&experiment).unwrap();
        let weights: Vec<u8> = (0..3_000_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        std::fs::write(experiment.join("model.bin"), weights).unwrap();
        let packaged = crate::package_experiment(
            &experiment,
            &crate::PackageOptions::new(dir.path().join("out")),
        )
        .unwrap();
        let original = std::fs::read(&packaged.archive_path).unwrap();

        let store = Arc::new(IgnoresRanges(InMemory::new()));
        let remote = Remote::with_store("memory://test", store, Key::from("team")).unwrap();
        remote
            .push(&packaged.archive_path, false, &crate::NoProgress)
            .unwrap();

        let pulled = dir.path().join("pulled");
        std::fs::create_dir_all(&pulled).unwrap();
        let partial = pulled.join(format!(
            "exp.tar.gz.{}.download",
            &packaged.sidecar.checksum[..16]
        ));
        std::fs::write(&partial, &original[..original.len() / 2]).unwrap();
        let report = remote.pull("exp", &pulled, &crate::NoProgress).unwrap();
        assert_eq!(
            report.resumed, 0,
            "the store sent everything, so nothing was kept"
        );
        assert_eq!(report.downloaded, original.len() as u64);
        assert_eq!(std::fs::read(pulled.join("exp.tar.gz")).unwrap(), original);
        assert!(!partial.exists());
    }
}
