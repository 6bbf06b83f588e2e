//! What runs on a host, as pure values: each function here builds an [`Invocation`] from a
//! role script and its inputs, without touching the network, so it can be unit-tested.
//!
//! Everything goes through stdin (`sh -s`): inputs are exported at the top of the script
//! text, so no value, secret or not, ever appears in a process list or in sudo's log.

use std::fmt::Write;

use crate::roles::Script;

/// No `Debug` derive: `stdin` holds the inputs' values, secrets included. The manual one
/// shows what the run log shows.
#[derive(Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The command line sent over SSH.
    pub command: String,
    /// Bytes fed to the command's stdin.
    pub stdin: Vec<u8>,
    /// A file streamed to stdin after `stdin` (image archives: never held in memory).
    pub stdin_file: Option<std::path::PathBuf>,
    /// What the run log and error messages show: the script and its non-secret inputs.
    pub display: String,
}

impl std::fmt::Debug for Invocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invocation").field("command", &self.command).field("display", &self.display).finish()
    }
}

/// One input of a script, exported as an environment variable.
#[derive(Clone)]
pub struct Input {
    pub name: String,
    pub value: String,
    pub secret: bool,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = if self.secret { "<secret>" } else { self.value.as_str() };
        write!(f, "Input({}={value:?})", self.name)
    }
}

impl Input {
    pub fn new(name: &str, value: impl Into<String>) -> Input {
        Input { name: name.to_string(), value: value.into(), secret: false }
    }

    pub fn secret(name: &str, value: impl Into<String>) -> Input {
        Input { name: name.to_string(), value: value.into(), secret: true }
    }
}

/// Runs `script` with `inputs` in its environment, as root (through `sudo -n` when the SSH
/// user is not root).
pub fn script(script: &Script, inputs: &[Input], sudo: bool) -> Invocation {
    let mut text = preamble();
    let shown = exports(&mut text, inputs);
    text.push_str(&script.body);
    Invocation {
        command: sh(sudo),
        stdin: text.into_bytes(),
        stdin_file: None,
        display: display(script, &shown),
    }
}

/// The line after each script's output in [`checks`]: this marker and its exit status.
pub const CHECK_DONE: &str = "clusterup-check-done";

/// Runs read-only check scripts in one round trip, one after the other, each in a subshell of
/// its own (its inputs exported there only, its stdin closed, so that it cannot read the
/// scripts after it), each output followed by a [`CHECK_DONE`] line with its exit status.
/// [`split_checks`] takes the output apart again.
pub fn checks(scripts: &[(Script, Vec<Input>)], sudo: bool) -> Invocation {
    let mut text = preamble();
    let mut shown = Vec::new();
    for (script, inputs) in scripts {
        text.push_str("(\n");
        shown.push(display(script, &exports(&mut text, inputs)));
        text.push_str(&script.body);
        let _ = writeln!(text, "\n) </dev/null\nprintf '\\n%s %s\\n' {CHECK_DONE} \"$?\"");
    }
    Invocation { command: sh(sudo), stdin: text.into_bytes(), stdin_file: None, display: shown.join(" + ") }
}

/// Each check's exit status and output, in order; None when the output does not hold
/// `count` of them (the shell died midway).
pub fn split_checks(stdout: &str, count: usize) -> Option<Vec<(u32, String)>> {
    let mut results = Vec::new();
    let mut output = String::new();
    for line in stdout.lines() {
        match line.strip_prefix(CHECK_DONE).and_then(|rest| rest.trim().parse().ok()) {
            Some(status) => results.push((status, std::mem::take(&mut output))),
            None => {
                output.push_str(line);
                output.push('\n');
            }
        }
    }
    (results.len() == count).then_some(results)
}

fn preamble() -> String {
    let mut text = String::from("export LC_ALL=C DEBIAN_FRONTEND=noninteractive\n");
    // Reports the step's process group, so that a run stopped midway can stop it too.
    text.push_str(crate::roles::file("common/announce.sh").unwrap_or_default());
    text
}

/// Writes `export NAME='value'` lines; returns how each input may be shown.
fn exports(text: &mut String, inputs: &[Input]) -> Vec<String> {
    let mut shown = Vec::new();
    for input in inputs {
        debug_assert!(is_env_name(&input.name), "bad input name {}", input.name);
        let _ = writeln!(text, "export {}={}", input.name, shell_quote(&input.value));
        if input.secret {
            shown.push(format!("{}=<secret>", input.name));
        } else if input.value.contains('\n') || input.value.len() > 64 {
            shown.push(format!("{}=<{} bytes>", input.name, input.value.len()));
        } else {
            shown.push(format!("{}={}", input.name, input.value));
        }
    }
    shown
}

fn display(script: &Script, shown: &[String]) -> String {
    if shown.is_empty() { script.path.to_string() } else { format!("{} ({})", script.path, shown.join(", ")) }
}

/// Whether a command's stderr says `sudo -n` refused to run it (no NOPASSWD rule).
pub fn sudo_refused(stderr: &str) -> bool {
    stderr.contains("password is required") || stderr.contains("a terminal is required")
}

/// What to do about it, for the error message.
pub fn sudo_needed(ssh_user: &str) -> String {
    format!(
        "user `{ssh_user}` needs passwordless sudo (a NOPASSWD rule in /etc/sudoers.d), or connect as root"
    )
}

fn sh(sudo: bool) -> String {
    if sudo { "sudo -n sh -s".into() } else { "sh -s".into() }
}

/// Streams a `docker save` archive into the node's `docker load`: a command, not a role script,
/// since its stdin is the archive and so cannot also carry a script.
pub fn docker_load(archive: &std::path::Path, size: u64, sudo: bool) -> Invocation {
    let file = archive.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    Invocation {
        command: if sudo { "sudo -n docker load".into() } else { "docker load".into() },
        display: format!("docker load < {file} ({size} bytes)"),
        stdin: Vec::new(),
        stdin_file: Some(archive.to_path_buf()),
    }
}

/// Streams a local file to `dest` on the host, created with mode 0600 and its missing folders
/// (a backup's archive):
/// like [`docker_load`], a command whose stdin is the file, so it cannot also carry a script.
/// Large data never goes into a script's environment, where the kernel caps one value at
/// 128 KiB for every command the script starts.
pub fn upload(local: &std::path::Path, dest: &str, size: u64, sudo: bool) -> Invocation {
    let file = local.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let install = format!("install -D -m 0600 /dev/stdin {}", shell_quote(dest));
    Invocation {
        command: if sudo { format!("sudo -n {install}") } else { install },
        display: format!("upload {file} ({size} bytes) to {dest}"),
        stdin: Vec::new(),
        stdin_file: Some(local.to_path_buf()),
    }
}

/// Quotes a value for POSIX sh: single quotes, with embedded single quotes spliced in.
pub fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo() -> Script {
        Script { path: "test/echo.sh".into(), body: "echo \"$A\"\n".into() }
    }

    #[test]
    fn quotes_survive_hostile_values() {
        assert_eq!(shell_quote("plain"), "'plain'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$(rm -rf /)"), "'$(rm -rf /)'");
    }

    #[test]
    fn inputs_travel_on_stdin_and_secrets_are_not_displayed() {
        let inv = script(&echo(), &[Input::new("A", "x y"), Input::secret("TOKEN", "SWMTKN-1-abc")], true);
        assert_eq!(inv.command, "sudo -n sh -s");
        let stdin = String::from_utf8(inv.stdin.clone()).unwrap();
        assert!(stdin.contains("export A='x y'\n"));
        assert!(stdin.contains("export TOKEN='SWMTKN-1-abc'\n"));
        assert!(stdin.ends_with("echo \"$A\"\n"));
        assert_eq!(inv.display, "test/echo.sh (A=x y, TOKEN=<secret>)");
        assert!(!inv.command.contains("SWMTKN"));
        // Debug output (panics, logs of a developer) never shows a secret either.
        assert!(!format!("{inv:?}").contains("SWMTKN"), "{inv:?}");
        let input = Input::secret("TOKEN", "SWMTKN-1-abc");
        assert_eq!(format!("{input:?}"), "Input(TOKEN=\"<secret>\")");
    }

    #[test]
    fn checks_run_in_one_round_trip_each_in_its_own_subshell() {
        let fail = Script { path: "test/fail.sh".into(), body: "echo \"needs $B\"\nexit 10\n".into() };
        let inv = checks(&[(echo(), vec![Input::new("A", "a")]), (fail, vec![Input::new("B", "b")])], false);
        assert_eq!(inv.display, "test/echo.sh (A=a) + test/fail.sh (B=b)");
        let out = std::process::Command::new("sh")
            .arg("-s")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(&inv.stdin)?;
                child.wait_with_output()
            })
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let results = split_checks(&stdout, 2).unwrap_or_else(|| panic!("{stdout}"));
        assert_eq!(results[0], (0, "a\n\n".to_string()));
        assert_eq!(results[1].0, 10);
        // B only: A was exported in the first script's subshell, not in the second's.
        assert_eq!(results[1].1.trim(), "needs b");
        assert_eq!(split_checks(&stdout, 3), None, "a check missing from the output is noticed");
    }

    #[test]
    fn an_upload_streams_the_file_to_a_quoted_path_and_shows_no_content() {
        let inv = upload(std::path::Path::new("/tmp/b/swarm.tar.gz"), "/srv/x y/.a.tar.gz", 42, true);
        assert_eq!(inv.command, "sudo -n install -D -m 0600 /dev/stdin '/srv/x y/.a.tar.gz'");
        assert_eq!(inv.stdin_file.as_deref(), Some(std::path::Path::new("/tmp/b/swarm.tar.gz")));
        assert!(inv.stdin.is_empty());
        assert_eq!(inv.display, "upload swarm.tar.gz (42 bytes) to /srv/x y/.a.tar.gz");
        assert_eq!(
            upload(std::path::Path::new("f"), "/d", 1, false).command,
            "install -D -m 0600 /dev/stdin '/d'"
        );
    }

    #[test]
    fn root_runs_without_sudo() {
        assert_eq!(script(&echo(), &[], false).command, "sh -s");
    }
}
