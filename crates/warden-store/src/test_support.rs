//! A throwaway PostgreSQL server for tests (feature `test-support`): warden-store's
//! conformance suite and the tests of the crates that use PostgreSQL replicas (warden-hsmd).
//!
//! If `WARDEN_TEST_POSTGRES_URL` is set, the tests use that server. Otherwise they run
//! `initdb` + `pg_ctl` (found on `PATH`, or the newest `/usr/lib/postgresql/*/bin`) on a
//! cluster in a temporary directory, listening only on a Unix socket in that directory, with
//! `trust` authentication for the superuser `warden`. As root (initdb refuses root) the
//! cluster runs as the `postgres` system user through `runuser`, and the directory is handed
//! to that user. The cluster is shared by the tests running at one time and stopped
//! (`pg_ctl stop -m immediate`) when the last of them drops it.
//!
//! When PostgreSQL cannot be had, the tests fail if `CI=true` or `WARDEN_TEST_POSTGRES_BIN` is
//! set (`.ci/run` sets it after preparing the binaries), and are skipped otherwise, each skip
//! saying so on stderr.

use std::ffi::OsStr;
use std::fs;
use std::io::Write as _;
use std::net::TcpListener;
use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, Weak};

use tempfile::TempDir;

/// A PostgreSQL server the tests can use.
pub struct PgServer {
    /// A connection string for `PgDatabase::connect`.
    pub url: String,
    cluster: Option<Cluster>,
}

impl std::fmt::Debug for PgServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgServer").field("url", &self.url).finish_non_exhaustive()
    }
}

struct Cluster {
    dir: TempDir,
    bin: PathBuf,
    run_as: Option<String>,
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Some(c) = &self.cluster {
            let data = c.dir.path().join("data");
            let _ = run(
                c,
                "pg_ctl",
                [
                    OsStr::new("-D"),
                    data.as_os_str(),
                    "-m".as_ref(),
                    "immediate".as_ref(),
                    "-w".as_ref(),
                    "stop".as_ref(),
                ],
            );
        }
    }
}

impl PgServer {
    /// Creates an empty database `name` on the server (dropping one of that name first) and
    /// returns a connection string for it, so that tests sharing the server stay apart.
    pub fn fresh_database(&self, name: &str) -> Result<String, String> {
        if name.is_empty()
            || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(format!("database name {name:?}: lower-case letters, digits and _ only"));
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start a runtime: {e}"))?;
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
                .await
                .map_err(|e| format!("cannot connect to {}: {e}", self.url))?;
            let driver = tokio::spawn(conn);
            let sql = format!("DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name}");
            for statement in sql.split("; ") {
                client.batch_execute(statement).await.map_err(|e| format!("{statement}: {e}"))?;
            }
            drop(client);
            let _ = driver.await;
            Ok::<_, String>(())
        })?;
        Ok(with_dbname(&self.url, name))
    }
}

/// `url` naming database `name` instead: a `postgresql://` URI gets it as its path, a
/// key-value string gets a trailing `dbname=` (the last one wins).
fn with_dbname(url: &str, name: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (rest, query) = rest.split_once('?').map_or((rest, None), |(r, q)| (r, Some(q)));
            let authority = rest.split_once('/').map_or(rest, |(a, _)| a);
            let query = query.map_or(String::new(), |q| format!("?{q}"));
            format!("{scheme}://{authority}/{name}{query}")
        }
        None => format!("{url} dbname={name}"),
    }
}

static SHARED: Mutex<Weak<PgServer>> = Mutex::new(Weak::new());

/// Returns the shared server, starting it if needed; `None` means "skip" (only outside CI).
pub fn server() -> Option<Arc<PgServer>> {
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = shared.upgrade() {
        return Some(s);
    }
    let started = match std::env::var("WARDEN_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Ok(PgServer { url, cluster: None }),
        _ => start_cluster(),
    };
    match started {
        Ok(s) => {
            let s = Arc::new(s);
            *shared = Arc::downgrade(&s);
            Some(s)
        }
        Err(why) => {
            if std::env::var("CI").is_ok_and(|v| v == "true")
                || std::env::var_os("WARDEN_TEST_POSTGRES_BIN").is_some()
            {
                panic!(
                    "PostgreSQL is required in CI but could not be started: {why}\n\
                     (install the `postgresql` package, or set WARDEN_TEST_POSTGRES_URL)"
                );
            }
            #[allow(clippy::print_stderr, reason = "test support: say why a test is skipped")]
            {
                eprintln!("SKIPPED: PostgreSQL tests: {why} (set WARDEN_TEST_POSTGRES_URL)");
            }
            None
        }
    }
}

/// Finds the directory holding `initdb` and `pg_ctl`.
fn find_bin() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("WARDEN_TEST_POSTGRES_BIN") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
                return Ok(dir);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| "no initdb on PATH and no /usr/lib/postgresql".to_string())?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| "no initdb found".to_string())
}

/// Runs one PostgreSQL program of the cluster, as the cluster's user.
fn run<I, S>(c: &Cluster, program: &str, args: I) -> Result<(), String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let exe = c.bin.join(program);
    let mut cmd = match &c.run_as {
        Some(user) => {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", user, "--"]).arg(&exe);
            cmd
        }
        None => Command::new(&exe),
    };
    cmd.args(args).current_dir(c.dir.path());
    let out = cmd.output().map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn is_root() -> Result<bool, String> {
    let out = Command::new("id").arg("-u").output().map_err(|e| format!("cannot run id: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn id_of(user: &str, flag: &str) -> Result<u32, String> {
    let out = Command::new("id")
        .args([flag, user])
        .output()
        .map_err(|e| format!("cannot run id: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| format!("running as root, but there is no `{user}` user to run PostgreSQL as"))
}

fn start_cluster() -> Result<PgServer, String> {
    let bin = find_bin()?;
    let dir = tempfile::Builder::new()
        .prefix("warden-pg-")
        .tempdir()
        .map_err(|e| format!("cannot create a temp dir: {e}"))?;
    let run_as = if is_root()? {
        let user = "postgres";
        let (uid, gid) = (id_of(user, "-u")?, id_of(user, "-g")?);
        chown(dir.path(), Some(uid), Some(gid))
            .map_err(|e| format!("cannot chown temp dir: {e}"))?;
        Some(user.to_string())
    } else {
        None
    };
    let cluster = Cluster { dir, bin, run_as };
    let data = cluster.dir.path().join("data");
    let sock = cluster.dir.path().to_path_buf();
    run(
        &cluster,
        "initdb",
        [
            OsStr::new("-D"),
            data.as_os_str(),
            "-U".as_ref(),
            "warden".as_ref(),
            "--auth=trust".as_ref(),
            "-E".as_ref(),
            "UTF8".as_ref(),
            "--no-sync".as_ref(),
        ],
    )?;
    let port = free_port()?;
    append_conf(&data, &sock, port)?;
    let log = cluster.dir.path().join("server.log");
    let started = run(
        &cluster,
        "pg_ctl",
        [
            OsStr::new("-D"),
            data.as_os_str(),
            "-l".as_ref(),
            log.as_os_str(),
            "-w".as_ref(),
            "-t".as_ref(),
            "60".as_ref(),
            "start".as_ref(),
        ],
    );
    if let Err(e) = started {
        let log = fs::read_to_string(&log).unwrap_or_default();
        return Err(format!("{e}\nserver log:\n{log}"));
    }
    let url = format!("host={} port={port} user=warden dbname=postgres", sock.display());
    Ok(PgServer { url, cluster: Some(cluster) })
}

/// Picks a port no one listens on (only the socket file's name uses it: no TCP listener).
fn free_port() -> Result<u16, String> {
    let l =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot find a free port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| format!("cannot find a free port: {e}"))
}

fn append_conf(data: &Path, sock: &Path, port: u16) -> Result<(), String> {
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(data.join("postgresql.conf"))
        .map_err(|e| format!("cannot edit postgresql.conf: {e}"))?;
    write!(
        f,
        "\n# warden-store tests\nlisten_addresses = ''\nunix_socket_directories = '{}'\n\
         port = {port}\nmax_connections = 100\nfsync = on\n",
        sock.display()
    )
    .map_err(|e| format!("cannot edit postgresql.conf: {e}"))
}

#[cfg(test)]
mod tests {
    use super::with_dbname;

    #[test]
    fn database_names_replace_the_url_s() {
        assert_eq!(
            with_dbname("host=/tmp port=5 dbname=postgres", "x"),
            "host=/tmp port=5 dbname=postgres dbname=x"
        );
        assert_eq!(
            with_dbname("postgresql://u@h:5/postgres?sslmode=disable", "x"),
            "postgresql://u@h:5/x?sslmode=disable"
        );
        assert_eq!(with_dbname("postgresql://u@h", "x"), "postgresql://u@h/x");
    }
}
