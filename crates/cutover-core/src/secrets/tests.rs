//! Reading secrets, masking them, and their trip over a script's stdin.

use std::io::Write;

use super::*;

fn secrets() -> Secrets {
    Secrets::from_values(vec![
        ("APP_KEY".into(), "base64:s3cr3t/K3y+with=sym'bols $HOME `x`".into()),
        ("TLS_KEY".into(), "-----BEGIN KEY-----\nMIIEabcdef\n-----END KEY-----".into()),
        ("PIN".into(), "123".into()),
    ])
}

#[test]
fn values_travel_on_stdin_into_the_environment_and_leave_the_rest_of_stdin() {
    let secrets = secrets();
    let script = format!(
        "set -eu\n{PROLOGUE}\nprintf '%s|' \"$APP_KEY\" \"$TLS_KEY\" \"$PIN\"\n\
         if env | grep -q '^cutover_n='; then echo leaked; fi\ncat"
    );
    let mut child =
        Command::new("sh").arg("-c").arg(&script).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("sh");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(&secrets.stdin_block(&IndexMap::new(), false)).expect("block");
    stdin.write_all(b"the tar stream\n").expect("rest");
    drop(stdin);
    let out = child.wait_with_output().expect("sh");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "base64:s3cr3t/K3y+with=sym'bols $HOME `x`|-----BEGIN KEY-----\nMIIEabcdef\n-----END KEY-----|123|\
         the tar stream\n"
    );
    let script_text = format!("{PROLOGUE}{:?}", secrets);
    assert!(!script_text.contains("s3cr3t"), "neither the script nor Debug holds a value");
}

#[test]
fn masking_covers_values_and_their_lines_but_not_short_ones() {
    let secrets = secrets();
    let text = "key=base64:s3cr3t/K3y+with=sym'bols $HOME `x`\nline MIIEabcdef\npin 123\n";
    assert_eq!(secrets.mask(text), format!("key={MASK}\nline {MASK}\npin 123\n"));
    assert!(matches!(secrets.mask("nothing here"), Cow::Borrowed(_)));
}

fn loaded_with(secrets_yaml: &str) -> (tempfile::TempDir, LoadedInventory) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("app")).expect("app");
    let text = format!(
        "application: shop\ndeploy_path: /srv/shop\nsource: app\ndefaults:\n  connection: local\n\
         hosts:\n  - name: web1\n    address: h/web1\nsecrets:\n{secrets_yaml}"
    );
    std::fs::write(dir.path().join("cutover.yaml"), text).expect("write");
    let loaded = crate::config::load_inventory(&dir.path().join("cutover.yaml")).expect("loads");
    (dir, loaded)
}

#[test]
fn read_from_a_command_or_a_file_without_the_last_newline() {
    let (dir, loaded) =
        loaded_with("  FROM_COMMAND: {command: 'printf \"one two\\n\"'}\n  FROM_FILE: {file: key.txt}\n");
    std::fs::write(dir.path().join("key.txt"), "file value\n").expect("key");
    let read = Secrets::read(&loaded).expect("read");
    assert_eq!(read.values, [("FROM_COMMAND".into(), "one two".into()), ("FROM_FILE".into(), "file value".into())]);
}

#[test]
fn a_secret_that_cannot_be_read_names_itself_and_why_never_a_value() {
    let (_dir, loaded) = loaded_with("  DB_PASSWORD: {env: CUTOVER_TEST_SURELY_UNSET_VARIABLE}\n");
    let error = Secrets::read(&loaded).expect_err("unset");
    assert_eq!(
        error.to_string(),
        "secret `DB_PASSWORD`: the environment variable `CUTOVER_TEST_SURELY_UNSET_VARIABLE` is not set"
    );
    let (_dir, loaded) =
        loaded_with("  VAULT: {command: 'printf %s%s half printed; printf %s%s den ied >&2; exit 2'}\n");
    let error = Secrets::read(&loaded).expect_err("failed").to_string();
    assert!(error.contains("failed with exit code 2 (run it yourself to see why)"), "{error}");
    assert!(
        !error.contains("halfprinted") && !error.contains("denied"),
        "what the command printed is not shown: {error}"
    );
    let (_dir, loaded) = loaded_with("  EMPTY: {command: 'true'}\n");
    assert!(Secrets::read(&loaded).expect_err("empty").to_string().ends_with("is empty"));
    let (_dir, loaded) = loaded_with("  GONE: {file: nowhere.txt}\n");
    assert!(Secrets::read(&loaded).expect_err("no file").to_string().contains("could not read"));
}
