//! What passes as an SSH value and what is refused, and that a refusal
//! names the field, line and column.

use super::*;

#[test]
fn host_names_and_addresses_of_every_usual_form_pass() {
    for ok in ["web1", "web-1.prod.example.com", "10.0.1.11", "::1", "2001:db8::17", "my_alias", "WEB1"] {
        assert_eq!(address(ok), Ok(()), "{ok}");
    }
}

#[test]
fn an_address_that_ssh_would_read_as_an_option_or_a_shell_would_run_is_refused() {
    for (bad, said) in [
        ("-oProxyCommand=touch x", "starts with `-`"),
        ("web1;touch x", "has `;`"),
        ("web1 -p 2222", "has whitespace"),
        ("$(touch x)", "has `$`"),
        ("`id`", "has a backtick"),
        ("web1\nweb2", "has a newline"),
        ("web\u{0}1", "has a NUL byte"),
        ("deploy@web1", "has `@`"),
        ("[::1]", "is not an IPv6 address"),
        ("web1:22", "is not an IPv6 address"),
        ("", "is empty"),
        (".hidden", "starts with `.`"),
    ] {
        let why = address(bad).expect_err(bad);
        assert!(why.contains(said), "{bad:?}: {why}");
    }
}

#[test]
fn users_are_the_usual_names() {
    for ok in ["deploy", "www-data", "first.last", "_svc", "ci2"] {
        assert_eq!(user(ok), Ok(()), "{ok}");
    }
    for bad in ["-oProxyCommand=x", "de ploy", "deploy;id", "ro'ot", "a@b", "$USER", ""] {
        assert!(user(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn jump_hosts_are_user_host_port_chains_with_ipv6_in_brackets() {
    for ok in ["bastion", "ops@bastion.example.com:2222", "[2001:db8::1]:22", "ops@[::1]", "a, b@c:2200 ,d"] {
        assert_eq!(jump_hosts(ok), Ok(()), "{ok}");
    }
    for (bad, said) in [
        ("bastion$(touch${IFS}x)", "has `$`"),
        ("-oProxyCommand=x", "starts with `-`"),
        ("bastion,,other", "an empty jump host"),
        ("2001:db8::1", "in brackets"),
        ("[2001:db8::1", "not closed"),
        ("bastion:0", "port 0"),
        ("bastion:ssh", "is not a port"),
        ("-x@bastion", "the user"),
        ("bastion|nc evil 1", "has `|`"),
    ] {
        let why = jump_hosts(bad).expect_err(bad);
        assert!(why.contains(said), "{bad:?}: {why}");
    }
}

#[test]
fn files_ssh_would_split_are_refused() {
    assert_eq!(file(std::path::Path::new("~/.ssh/deploy_ed25519")), Ok(()));
    assert!(file(std::path::Path::new("/home/me/My Keys/id")).expect_err("a space").contains("whitespace"));
    assert!(file(std::path::Path::new("/tmp/k\"x")).is_err());
    assert!(file(std::path::Path::new("/tmp/k\nx")).expect_err("a newline").contains("a newline"));
}

#[test]
fn a_refusal_names_the_field_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("app")).expect("app");
    let path = dir.path().join("cutover.yaml");
    let text = "application: shop\ndeploy_path: /srv/shop\nsource: app\n\
                defaults:\n  user: deploy\nhosts:\n  - name: web1\n  - name: web2\n    \
                proxy_jump: 'bastion$(touch x)'\n";
    std::fs::write(&path, text).expect("write");
    let error = crate::config::load_inventory(&path).expect_err("refused");
    assert_eq!(error.field.as_deref(), Some("hosts[1].proxy_jump"), "{error}");
    let position = error.position.expect("a position");
    assert_eq!((position.line, position.column), (9, 17), "{error}");
    assert!(error.message.contains("has `$`"), "{error}");
    assert!(error.hint.as_deref().is_some_and(|h| h.contains("bastion")), "{error:?}");
}
