//! Debian trixie's own riscv64 programs under tandem-riscv64, compared with
//! qemu-riscv64-static: bash, coreutils, sed, gawk, perl, git, python3 (scripts in
//! tests/debian-programs/) and a selection of CPython's regression suite.
//!
//! The sysroot is built by scripts/riscv64-sysroot.sh into the target directory
//! (`CARGO_TARGET_TMPDIR/riscv64-sysroot`; cached, about 10 s and 190 MB the first time) or
//! taken from `TANDEM_RISCV64_SYSROOT`. Programs run as `RUNNER -L SYSROOT SYSROOT/usr/bin/PROG`.
//!
//! What QEMU can be the reference for: qemu-user without a binfmt_misc handler cannot run
//! a RISC-V program the guest execs; the host kernel runs the path the guest names, so a
//! bash pipeline under QEMU runs the host's own `sort`, and git's helper processes are the
//! host's git. Tandem runs the sysroot's RISC-V programs in-process. The tests therefore
//! compare stdout and exit status where the output does not depend on who runs the
//! children, and check expected output where it does (python's subprocess of itself, git gc).
//! CPython's tests run under Tandem only: under QEMU most of the selected modules fail in
//! the cases that start a Python child (docs/debian-programs.md has both runners' results
//! and timings, module by module); every case selected here passes under Tandem.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

#[path = "../../../tests/support/user_tools.rs"]
mod user_tools;
use user_tools::{need, repo};

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem-riscv64");
/// Longest a single program may run before `timeout` ends it (a hang fails the test
/// instead of CI's job).
const LIMIT: Duration = Duration::from_secs(300);

/// The sysroot, built once per test binary (the script itself locks against other
/// processes and does nothing when the sysroot is up to date).
fn sysroot() -> &'static Path {
    static ROOT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let r = ROOT.get_or_init(|| {
        if let Some(dir) = std::env::var_os("TANDEM_RISCV64_SYSROOT") {
            return Ok(PathBuf::from(dir));
        }
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("riscv64-sysroot");
        let script = repo().join("scripts/riscv64-sysroot.sh");
        let o = Command::new("bash")
            .arg(&script)
            .arg(&dir)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running scripts/riscv64-sysroot.sh: {e}"))?;
        eprint!("{}", String::from_utf8_lossy(&o.stdout));
        if o.status.success() {
            Ok(dir)
        } else {
            let err = String::from_utf8_lossy(&o.stderr);
            Err(format!(
                "scripts/riscv64-sysroot.sh {} failed ({}): {}",
                dir.display(),
                o.status,
                err.lines().last().unwrap_or("no message")
            ))
        }
    });
    match r {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Runner {
    Tandem,
    Qemu,
}

/// How to run one program: its arguments, stdin, working directory and extra environment.
#[derive(Default, Clone)]
struct Job<'a> {
    args: Vec<String>,
    stdin: Option<&'a [u8]>,
    cwd: Option<&'a Path>,
    env: Vec<(String, String)>,
}

fn job<'a>(args: &[&str]) -> Job<'a> {
    Job {
        args: args.iter().map(|s| s.to_string()).collect(),
        ..Job::default()
    }
}

/// Runs SYSROOT/`prog` (a path inside the sysroot, e.g. `usr/bin/sort`) under `runner`.
fn run(runner: Runner, prog: &str, j: &Job) -> Output {
    let root = sysroot();
    let exe = match runner {
        Runner::Tandem => TANDEM,
        Runner::Qemu => {
            need("qemu-riscv64-static", "qemu-user-static");
            "qemu-riscv64-static"
        }
    };
    need("timeout", "coreutils");
    let mut cmd = Command::new("timeout");
    cmd.arg("--kill-after=10")
        .arg(LIMIT.as_secs().to_string())
        .arg(exe)
        .arg("-L")
        .arg(root)
        .arg(root.join(prog))
        .args(&j.args)
        .env_remove("QEMU_LD_PREFIX")
        .env("LC_ALL", "C")
        .env("TZ", "UTC")
        .envs(j.env.iter().map(|(k, v)| (k, v)))
        .stdin(if j.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(d) = j.cwd {
        cmd.current_dir(d);
    }
    let mut child = cmd.spawn().expect("spawn timeout");
    if let Some(input) = j.stdin {
        use std::io::Write;
        let mut pipe = child.stdin.take().expect("stdin pipe");
        let data = input.to_vec();
        // A writer thread, so a program that prints before reading all of its input
        // cannot deadlock against us.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
    }
    child.wait_with_output().expect("wait for the program")
}

/// As `user_tools::status_str`, naming a run `timeout` ended.
fn status_str(o: &Output) -> String {
    match o.status.code() {
        Some(124) => format!("timed out after {} s", LIMIT.as_secs()),
        _ => user_tools::status_str(o),
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `prog` under QEMU and Tandem; returns a description of any difference in stdout or
/// exit status (None when equal) and Tandem's output.
fn differs(prog: &str, j: &Job) -> (Option<String>, Output) {
    let want = run(Runner::Qemu, prog, j);
    let got = run(Runner::Tandem, prog, j);
    let label = format!("{prog} {}", j.args.join(" "));
    let diff = if got.stdout != want.stdout {
        Some(format!(
            "{label}: stdout differs\n--- qemu:\n{}--- tandem:\n{}--- tandem stderr:\n{}",
            text(&want.stdout),
            text(&got.stdout),
            text(&got.stderr)
        ))
    } else if status_str(&got) != status_str(&want) {
        Some(format!(
            "{label}: qemu {}, tandem {}; tandem stderr:\n{}",
            status_str(&want),
            status_str(&got),
            text(&got.stderr)
        ))
    } else {
        None
    };
    (diff, got)
}

/// Like `differs`, but fails the test at once, and checks Tandem's status against `status`
/// (so both failing the same way does not pass).
fn same_as_qemu(prog: &str, j: &Job, status: &str) -> Output {
    let (diff, got) = differs(prog, j);
    if let Some(d) = diff {
        panic!("{d}");
    }
    assert_eq!(
        status_str(&got),
        status,
        "{prog}: both runners agree, on an unexpected status; stderr:\n{}",
        text(&got.stderr)
    );
    got
}

fn script(name: &str) -> String {
    repo()
        .join("tests/debian-programs")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// A fresh scratch directory under the target directory.
fn scratch(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("debian-programs")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = f();
    eprintln!("{what}: {:.1} s", t.elapsed().as_secs_f64());
    r
}

#[test]
fn bash_script() {
    timed("bash", || {
        let o = same_as_qemu("usr/bin/bash", &job(&[&script("shell.sh")]), "exit 7");
        let out = text(&o.stdout);
        for want in [
            "fib 5 = 5",
            "caught USR1",
            "ERR trapped",
            "c:3\na:2\nb:1",
            "pipe status: 141 0",
        ] {
            assert!(out.contains(want), "bash: no {want:?} in\n{out}");
        }
    });
}

const DATA: &str = "red:alice:10.5\nblue:bob:3\nred:carol:7.25\ngreen:dave:100\n\
                    blue:erin:12.75\nred:frank:0.5\nred:alice:2\n";

#[test]
fn coreutils() {
    let dir = scratch("coreutils");
    std::fs::write(dir.join("data.txt"), DATA).unwrap();
    std::fs::write(
        dir.join("words"),
        "pear\nApple\nfig\napple\nPear\nkiwi\nfig\n",
    )
    .unwrap();
    std::fs::write(dir.join("left"), "1 one\n2 two\n4 four\n").unwrap();
    std::fs::write(dir.join("right"), "1 uno\n3 tres\n4 cuatro\n").unwrap();
    std::fs::create_dir_all(dir.join("tree/sub")).unwrap();
    std::fs::write(dir.join("tree/big"), vec![b'x'; 5000]).unwrap();
    std::fs::write(dir.join("tree/small"), "hi\n").unwrap();
    std::fs::write(dir.join("tree/sub/inner"), "deep\n").unwrap();
    let data = DATA.as_bytes();
    // (program, arguments, stdin)
    type Case<'a> = (&'a str, Vec<&'a str>, Option<&'a [u8]>);
    let cases: Vec<Case> = vec![
        ("seq", vec!["-s,", "-w", "1", "3", "30"], None),
        ("seq", vec!["-f", "%.2f", "0", "0.25", "1"], None),
        ("sort", vec!["-t:", "-k3,3n", "-k1,1r"], Some(data)),
        ("sort", vec!["-t:", "-k2,2", "-u", "data.txt"], None),
        ("sort", vec!["-f", "-u", "words"], None),
        (
            "sort",
            vec!["-R", "--random-source=data.txt", "words"],
            None,
        ),
        ("uniq", vec!["-c", "-i"], Some(b"a\nA\nb\nb\nc\n")),
        ("wc", vec![], Some(data)),
        ("wc", vec!["-l", "-w", "-c", "data.txt", "words"], None),
        ("sha256sum", vec!["data.txt", "words"], None),
        ("sha512sum", vec![], Some(data)),
        ("md5sum", vec!["data.txt"], None),
        ("b2sum", vec!["-l", "128", "data.txt"], None),
        ("cksum", vec!["data.txt"], None),
        ("tr", vec!["a-z", "A-Z"], Some(data)),
        ("tr", vec!["-s", "a-z", "-d", ":0-9."], Some(data)),
        ("cut", vec!["-d:", "-f1,3"], Some(data)),
        ("cut", vec!["-c2-5", "data.txt"], None),
        ("ls", vec!["-1", "-a", "-R", "tree"], None),
        ("ls", vec!["-S", "-s", "--block-size=1", "tree"], None),
        ("ls", vec!["-l", "-n", "--time-style=+", "tree/big"], None),
        ("date", vec!["-d", "@0", "-u"], None),
        (
            "date",
            vec!["-u", "-d", "2024-02-29 12:34:56", "+%s %A %j %U"],
            None,
        ),
        ("date", vec!["-u", "-d", "@1700000000", "+%c %z"], None),
        (
            "factor",
            vec!["1234567890", "9999999967", "18446744073709551557"],
            None,
        ),
        ("expr", vec!["12", "*", "34", "+", "5"], None),
        ("expr", vec!["abc", ":", "a\\(.\\)"], None),
        (
            "od",
            vec!["-A", "x", "-t", "x1z", "-N", "24", "data.txt"],
            None,
        ),
        ("base64", vec!["data.txt"], None),
        ("base64", vec!["-d"], Some(b"dGFuZGVtIHJpc2N2NjQK")),
        ("head", vec!["-n", "3", "data.txt"], None),
        ("tail", vec!["-c", "20", "data.txt"], None),
        ("tac", vec!["data.txt"], None),
        ("nl", vec!["-ba", "-w3"], Some(data)),
        ("paste", vec!["-sd+"], Some(b"1\n2\n3\n")),
        ("paste", vec!["left", "right"], None),
        ("join", vec!["left", "right"], None),
        ("comm", vec!["-3", "left", "right"], None),
        ("fold", vec!["-w", "7"], Some(data)),
        ("numfmt", vec!["--to=iec", "1048576", "123456789"], None),
        (
            "printf",
            vec!["%08.3f|%5s|%x|%q\n", "3.14159", "ab", "255", "a b"],
            None,
        ),
        ("stat", vec!["-c", "%s %F %a", "data.txt", "tree"], None),
        (
            "dd",
            vec!["if=data.txt", "bs=7", "skip=1", "count=3", "status=none"],
            None,
        ),
        ("shuf", vec!["--random-source=data.txt", "-i", "1-12"], None),
        ("env", vec!["-i", "A=1", "B=2"], None),
        ("basename", vec!["-s", ".txt", "/a/b/data.txt"], None),
        (
            "realpath",
            vec!["-m", "--relative-to=/usr/bin", "/usr/lib/x/../y"],
            None,
        ),
        ("true", vec![], None),
        ("false", vec![], None),
        ("test", vec!["-d", "tree", "-a", "-s", "data.txt"], None),
        ("sleep", vec!["0.05"], None),
        ("yes", vec!["--version"], None),
    ];
    let start = Instant::now();
    let mut failures = Vec::new();
    for (prog, args, stdin) in &cases {
        let mut j = job(args);
        j.stdin = *stdin;
        j.cwd = Some(&dir);
        if let (Some(d), _) = differs(&format!("usr/bin/{prog}"), &j) {
            failures.push(d);
        }
    }
    eprintln!(
        "coreutils: {} programs under both: {:.1} s",
        cases.len(),
        start.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn sed_and_gawk() {
    timed("sed and gawk", || {
        let dir = repo().join("tests/debian-programs");
        let data = script("data.txt");
        let mut j = job(&["-E", "-f", "text.sed", &data]);
        j.cwd = Some(&dir);
        let o = same_as_qemu("usr/bin/sed", &j, "exit 0");
        assert!(text(&o.stdout).contains("CArol (red) = 7.25"), "sed output");
        let o = same_as_qemu(
            "usr/bin/sed",
            &job(&["-n", "-e", "2,4{s/:/ /gp}", "-e", "$=", &data]),
            "exit 0",
        );
        assert!(text(&o.stdout).ends_with("9\n"), "sed line count");
        let mut j = job(&["-f", "text.awk", &data]);
        j.cwd = Some(&dir);
        let o = same_as_qemu("usr/bin/gawk", &j, "exit 0");
        assert!(text(&o.stdout).contains("fact|3628800|2432902008176640000"));
        let o = same_as_qemu(
            "usr/bin/gawk",
            &job(&[
                "BEGIN { srand(42); for (i = 0; i < 5; i++) printf \"%d \", int(rand() * 1000); \
                 print strftime(\"%Y-%m-%d %H:%M:%S\", 1700000000, 1); \
                 print and(0xff, 0x3c), lshift(1, 40), (compl(0) > 0); exit 2 }",
            ]),
            "exit 2",
        );
        assert!(text(&o.stdout).contains("2023-11-14 22:13:20"));
    });
}

#[test]
fn perl_script() {
    timed("perl", || {
        let o = same_as_qemu("usr/bin/perl", &job(&[&script("text.pl")]), "exit 3");
        let out = text(&o.stdout);
        assert!(out.contains("rot13: Uryyb, Jbeyq"), "perl output:\n{out}");
        assert!(
            out.contains("unpacked: deadbeef 513 7 abcd varlen"),
            "{out}"
        );
        let o = same_as_qemu(
            "usr/bin/perl",
            &job(&[
                "-MList::Util=sum,uniq",
                "-le",
                "print sum(1..100); print join ',', uniq(sort map { $_ % 7 } 1..50); \
                 printf qq{%.6f %s\\n}, atan2(1,1)*4, scalar localtime(0)",
            ]),
            "exit 0",
        );
        assert!(text(&o.stdout).starts_with("5050\n0,1,2,3,4,5,6\n3.141593 "));
    });
}

#[test]
fn python_script() {
    timed("python3 script", || {
        // Under Tandem the script's subprocess runs this python again (Tandem's in-process
        // execve of a RISC-V program); QEMU cannot, so there the script prints that line.
        let mut j = job(&[&script("script.py")]);
        let want = run(Runner::Qemu, "usr/bin/python3", &j);
        j.args.push("--exec-guest".into());
        let got = run(Runner::Tandem, "usr/bin/python3", &j);
        assert_eq!(
            text(&got.stdout),
            text(&want.stdout),
            "python3 script.py: stdout differs from qemu; tandem stderr:\n{}",
            text(&got.stderr)
        );
        assert_eq!(status_str(&want), "exit 4", "qemu: {}", text(&want.stderr));
        assert_eq!(status_str(&got), "exit 4", "tandem: {}", text(&got.stderr));
        assert!(text(&got.stdout).contains("child python: ['x', 'y'] 5"));
    });
}

/// Environment for git: a private HOME, fixed identities and dates, no system config, no
/// automatic maintenance (which would exec git, the host's under QEMU).
fn git_env(home: &Path) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("GIT_CONFIG_NOSYSTEM", "1"),
        ("GIT_AUTHOR_NAME", "Ann Example"),
        ("GIT_AUTHOR_EMAIL", "ann@example.org"),
        ("GIT_COMMITTER_NAME", "Ann Example"),
        ("GIT_COMMITTER_EMAIL", "ann@example.org"),
        ("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z"),
        ("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z"),
        ("GIT_PAGER", "cat"),
        ("GIT_CONFIG_COUNT", "2"),
        ("GIT_CONFIG_KEY_0", "maintenance.auto"),
        ("GIT_CONFIG_VALUE_0", "false"),
        ("GIT_CONFIG_KEY_1", "gc.auto"),
        ("GIT_CONFIG_VALUE_1", "0"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.push(("HOME".into(), home.to_string_lossy().into_owned()));
    env
}

#[test]
fn git_repository() {
    let base = scratch("git");
    let home = base.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let env = git_env(&home);
    let start = Instant::now();
    // Each step runs in its own repository under QEMU and under Tandem (the repositories
    // must evolve identically, so each runner has its own copy).
    let repos = [base.join("qemu"), base.join("tandem")];
    for r in &repos {
        std::fs::create_dir_all(r).unwrap();
    }
    type Edit = fn(&Path);
    let steps: Vec<(Vec<&str>, Option<Edit>)> = vec![
        (vec!["init", "-q", "-b", "main"], None),
        (
            vec!["add", "a.txt"],
            Some(|d| std::fs::write(d.join("a.txt"), "line one\nline two\nline three\n").unwrap()),
        ),
        (vec!["commit", "-q", "-m", "first"], None),
        (vec!["checkout", "-q", "-b", "topic"], None),
        (
            vec!["add", "-A"],
            Some(|d| {
                std::fs::write(d.join("a.txt"), "line one\nline 2\nline three\n").unwrap();
                std::fs::write(d.join("b.txt"), "new\n").unwrap();
            }),
        ),
        (vec!["commit", "-q", "-m", "topic change"], None),
        (vec!["checkout", "-q", "main"], None),
        (
            vec!["commit", "-q", "-a", "-m", "main change"],
            Some(|d| {
                std::fs::write(
                    d.join("a.txt"),
                    "line zero\nline one\nline two\nline three\n",
                )
                .unwrap()
            }),
        ),
        (vec!["merge", "-q", "--no-edit", "topic"], None),
        (
            vec![
                "log",
                "--format=%h %an %ad %s",
                "--date=iso-strict",
                "--graph",
            ],
            None,
        ),
        (vec!["diff", "HEAD~2", "HEAD", "--stat"], None),
        (vec!["diff", "HEAD~1", "HEAD"], None),
        (vec!["branch", "-a", "-v"], None),
        (vec!["status", "--short", "--branch"], None),
        (vec!["cat-file", "-p", "HEAD"], None),
        (vec!["rev-parse", "HEAD", "HEAD^{tree}"], None),
        (vec!["tag", "-a", "v1", "-m", "release"], None),
        (vec!["describe"], None),
        (vec!["show", "--stat", "--format=%s", "v1"], None),
        (vec!["blame", "-s", "a.txt"], None),
        (vec!["ls-files", "-s"], None),
        (vec!["shortlog", "-s", "-n", "HEAD"], None),
    ];
    let mut failures = Vec::new();
    for (args, edit) in &steps {
        let mut outs = Vec::new();
        for (r, runner) in repos.iter().zip([Runner::Qemu, Runner::Tandem]) {
            if let Some(f) = edit {
                f(r);
            }
            let mut j = job(args);
            j.cwd = Some(r);
            j.env = env.clone();
            outs.push(run(runner, "usr/bin/git", &j));
        }
        let (want, got) = (&outs[0], &outs[1]);
        if got.stdout != want.stdout || status_str(got) != status_str(want) {
            failures.push(format!(
                "git {}: qemu {} / tandem {}\n--- qemu:\n{}--- tandem:\n{}--- tandem stderr:\n{}",
                args.join(" "),
                status_str(want),
                status_str(got),
                text(&want.stdout),
                text(&got.stdout),
                text(&got.stderr)
            ));
        } else if status_str(got) != "exit 0" {
            failures.push(format!(
                "git {}: {} under both; stderr:\n{}",
                args.join(" "),
                status_str(got),
                text(&got.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // gc, repack and fsck exec git's helpers (pack-objects, prune, ...): RISC-V ones under
    // Tandem, the host's under QEMU. Checked under Tandem alone.
    let tandem_repo = &repos[1];
    for (args, want) in [
        (vec!["gc", "-q"], ""),
        (vec!["count-objects", "-v"], "in-pack: 14\npacks: 1\n"),
        (vec!["fsck", "--strict"], ""),
        (vec!["log", "--oneline", "-1"], "Merge branch 'topic'"),
    ] {
        let mut j = job(&args);
        j.cwd = Some(tandem_repo);
        j.env = env.clone();
        let o = run(Runner::Tandem, "usr/bin/git", &j);
        assert_eq!(
            status_str(&o),
            "exit 0",
            "git {}: {}",
            args.join(" "),
            text(&o.stderr)
        );
        assert!(
            text(&o.stdout).contains(want),
            "git {}: no {want:?} in\n{}",
            args.join(" "),
            text(&o.stdout)
        );
    }
    eprintln!(
        "git: {} steps under both, gc/fsck under tandem: {:.1} s",
        steps.len(),
        start.elapsed().as_secs_f64()
    );
}

/// Runs CPython's regression tests under Tandem (`python3 -m test ARGS`: module names, and
/// `-m PATTERN` to select or `-i PATTERN` to leave out test cases, each with its reason at
/// the call), and fails listing every failed case. HOME, TMPDIR and the working directory
/// are a scratch directory.
fn cpython(group: &str, regrtest_args: &[&str]) {
    let dir = scratch(&format!("cpython-{group}"));
    let mut args = vec!["-m", "test", "--timeout", "240", "-W"];
    args.extend(regrtest_args);
    let mut j = job(&args);
    j.cwd = Some(&dir);
    let d = dir.to_string_lossy().into_owned();
    j.env = vec![("HOME".into(), d.clone()), ("TMPDIR".into(), d)];
    let start = Instant::now();
    let o = run(Runner::Tandem, "usr/bin/python3", &j);
    let out = text(&o.stdout);
    eprintln!(
        "cpython {group}: {:.1} s under tandem",
        start.elapsed().as_secs_f64()
    );
    if status_str(&o) != "exit 0" || !out.contains("Result: SUCCESS") {
        let failed: Vec<&str> = out
            .lines()
            .filter(|l| {
                l.starts_with("FAIL:")
                    || l.starts_with("ERROR:")
                    || l.contains(" failed (")
                    || l.contains("crashed")
                    || l.starts_with("Result:")
            })
            .collect();
        let tail: Vec<&str> = out.lines().rev().take(60).collect();
        panic!(
            "CPython tests ({}) under tandem: {}\n{}\n--- last lines:\n{}\n--- stderr:\n{}",
            regrtest_args.join(" "),
            status_str(&o),
            failed.join("\n"),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            text(&o.stderr)
        );
    }
}

#[test]
fn cpython_numbers_strings_re_json() {
    cpython(
        "numbers-strings",
        &[
            "test_int",
            "test_float",
            "test_long",
            "test_math",
            "test_str",
            "test_bytes",
            "test_re",
            "test_json",
        ],
    );
}

#[test]
fn cpython_sqlite_os_io() {
    cpython("sqlite-os-io", &["test_sqlite3", "test_os", "test_io"]);
}

#[test]
fn cpython_threading() {
    cpython("threading", &["test_threading"]);
}

/// test_posix: posix_spawn and its file actions (a child started without stdin must find
/// fd 0 closed), fork, fexecve, waitid.
#[test]
fn cpython_signal_posix() {
    cpython("signal-posix", &["test_signal", "test_posix"]);
}

#[test]
fn cpython_socket() {
    cpython("socket", &["test_socket"]);
}

/// A part of test_subprocess (all of it takes three minutes, mostly starting Python
/// children): run/call/check_output, context managers, the shell helpers, `#!` scripts
/// (test_args_string, test_call_string: the script's /bin/sh is the sysroot's dash, whose
/// exec of python goes through Tandem), fd passing and closing, signals, preexec_fn,
/// communicate, pipe sizes, and a missing program's FileNotFoundError (posix_spawn reports
/// it through the memory its vfork child shares with the parent).
#[test]
fn cpython_subprocess() {
    cpython(
        "subprocess",
        &[
            "test_subprocess",
            "-m",
            "RunFuncTestCase",
            "-m",
            "ContextManagerTests",
            "-m",
            "CommandTests",
            "-m",
            "MiscTests",
            "-m",
            "test_args_string",
            "-m",
            "test_call_string",
            "-m",
            "test_close_fds",
            "-m",
            "test_pass_fds",
            "-m",
            "test_send_signal",
            "-m",
            "test_kill",
            "-m",
            "test_terminate",
            "-m",
            "test_preexec",
            "-m",
            "test_communicate",
            "-m",
            "test_pipesize*",
            // posix_spawn's failures reach the parent through vfork's shared memory.
            "-m",
            "test_exception_bad_*",
            "-m",
            "test_cwd_with_relative_*",
            "-m",
            "test_file_not_found_includes_filename",
        ],
    );
}

/// The quicker half of test_asyncio (all of it takes six minutes; test_events,
/// test_subprocess, test_tasks and test_ssl are most of that).
#[test]
fn cpython_asyncio() {
    cpython(
        "asyncio",
        &[
            "test_asyncio.test_futures",
            "test_asyncio.test_locks",
            "test_asyncio.test_queues",
            "test_asyncio.test_runners",
            "test_asyncio.test_selector_events",
            "test_asyncio.test_streams",
            "test_asyncio.test_server",
            "test_asyncio.test_sock_lowlevel",
            "test_asyncio.test_timeouts",
            "test_asyncio.test_waitfor",
            "test_asyncio.test_pep492",
            "test_asyncio.test_threads",
            "test_asyncio.test_unix_events",
        ],
    );
}
