//! A small D-Bus client, enough to drive systemd's manager: one blocking
//! unix socket, no threads (hull clones and setns after talking to
//! systemd, which a threaded process cannot), every wait bounded by a
//! deadline.
//!
//! Authentication is EXTERNAL with an empty identity: the bus takes the
//! credentials the kernel gives it, which also holds in a user namespace.
//! The AUTH exchange, `Hello` and any other call can go out in one write
//! before the first answer is read (`Bus::send`); replies are matched by
//! serial, and signals that arrive meanwhile are kept for `wait_signal`.

pub mod wire;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Instant;

pub use wire::{Message, Value};

/// The system bus's socket when `DBUS_SYSTEM_BUS_ADDRESS` names none.
pub const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";
/// No message hull exchanges comes near this.
const MAX_MESSAGE: usize = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Malformed(#[from] wire::Malformed),
    #[error("D-Bus authentication refused: {0}")]
    Auth(String),
    /// An error reply: its name (`org.freedesktop.systemd1.NoSuchUnit`)
    /// and message.
    #[error("{name}: {message}")]
    Call { name: String, message: String },
    #[error("no answer from the bus in time: waiting for {0}")]
    Timeout(String),
    #[error("the bus closed the connection")]
    Closed,
}

impl Error {
    /// The D-Bus error name of an error reply.
    pub fn name(&self) -> Option<&str> {
        match self {
            Error::Call { name, .. } => Some(name),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

pub struct Bus {
    sock: UnixStream,
    serial: u32,
    /// Bytes read but not yet taken as a message.
    inbox: Vec<u8>,
    /// The AUTH exchange's answer is still to be read.
    authenticating: bool,
    /// Signals read while waiting for a reply.
    signals: Vec<Message>,
    /// Replies read while waiting for another one.
    replies: Vec<Message>,
}

/// The unix socket a `unix:path=...` address names (the first such entry).
pub fn socket_of(address: &str) -> Option<&str> {
    address
        .split(';')
        .find_map(|a| a.strip_prefix("unix:"))
        .and_then(|kv| kv.split(',').find_map(|p| p.strip_prefix("path=")))
}

impl Bus {
    /// The system bus: `$DBUS_SYSTEM_BUS_ADDRESS`, else the standard socket.
    pub fn system() -> Result<Bus> {
        let env = std::env::var("DBUS_SYSTEM_BUS_ADDRESS").ok();
        let path = env.as_deref().and_then(socket_of).unwrap_or(SYSTEM_BUS);
        Bus::connect(Path::new(path), true)
    }

    /// Connect and send the AUTH exchange, and `Hello` when `hello` (a
    /// bus daemon wants it; systemd's private socket does not), without
    /// waiting for any answer.
    pub fn connect(path: &Path, hello: bool) -> Result<Bus> {
        let sock = UnixStream::connect(path)?;
        let mut bus = Bus {
            sock,
            serial: 0,
            inbox: Vec::new(),
            authenticating: true,
            signals: Vec::new(),
            replies: Vec::new(),
        };
        (&bus.sock).write_all(b"\0AUTH EXTERNAL\r\nDATA\r\nBEGIN\r\n")?;
        if hello {
            bus.send(
                "org.freedesktop.DBus",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus",
                "Hello",
                &[],
            )?;
        }
        Ok(bus)
    }

    /// Send a method call; returns its serial, for `wait_reply`.
    pub fn send(
        &mut self,
        destination: &str,
        path: &str,
        interface: &str,
        member: &str,
        args: &[Value],
    ) -> Result<u32> {
        self.serial = self.serial.wrapping_add(1).max(1);
        let msg = wire::method_call(self.serial, destination, path, interface, member, args);
        (&self.sock).write_all(&msg)?;
        Ok(self.serial)
    }

    /// Send a call and wait for its reply's body.
    pub fn call(
        &mut self,
        destination: &str,
        path: &str,
        interface: &str,
        member: &str,
        args: &[Value],
        deadline: Instant,
    ) -> Result<Vec<Value>> {
        let serial = self.send(destination, path, interface, member, args)?;
        self.wait_reply(serial, deadline)
    }

    /// The reply to call `serial`: its body, or its error.
    pub fn wait_reply(&mut self, serial: u32, deadline: Instant) -> Result<Vec<Value>> {
        let what = format!("reply to call {serial}");
        let m = loop {
            if let Some(i) = self
                .replies
                .iter()
                .position(|m| m.reply_serial == Some(serial))
            {
                break self.replies.swap_remove(i);
            }
            let m = self.next_message(deadline, &what)?;
            match m.kind {
                wire::SIGNAL => self.signals.push(m),
                wire::METHOD_RETURN | wire::ERROR => self.replies.push(m),
                _ => {}
            }
        };
        if m.kind == wire::ERROR {
            return Err(Error::Call {
                name: m.error_name.unwrap_or_default(),
                message: m
                    .body
                    .first()
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            });
        }
        Ok(m.body)
    }

    /// The first signal (kept or still to come) `wanted` accepts.
    pub fn wait_signal(
        &mut self,
        wanted: impl Fn(&Message) -> bool,
        deadline: Instant,
    ) -> Result<Message> {
        loop {
            if let Some(i) = self.signals.iter().position(&wanted) {
                return Ok(self.signals.remove(i));
            }
            let m = self.next_message(deadline, "a signal")?;
            match m.kind {
                wire::SIGNAL => self.signals.push(m),
                wire::METHOD_RETURN | wire::ERROR => self.replies.push(m),
                _ => {}
            }
        }
    }

    /// Read until one whole message is in, and take it.
    fn next_message(&mut self, deadline: Instant, what: &str) -> Result<Message> {
        loop {
            if self.authenticating {
                self.take_auth_answer()?;
            }
            if !self.authenticating
                && let Some(len) = wire::message_len(&self.inbox, MAX_MESSAGE)?
                && self.inbox.len() >= len
            {
                let m = wire::parse(&self.inbox[..len])?;
                self.inbox.drain(..len);
                return Ok(m);
            }
            self.fill(deadline, what)?;
        }
    }

    /// The server's answer to AUTH: "DATA" (asking for our empty
    /// identity, which went out already) then "OK <guid>".
    fn take_auth_answer(&mut self) -> Result<()> {
        while let Some(end) = self.inbox.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&self.inbox[..end]).into_owned();
            self.inbox.drain(..end + 2);
            if line.starts_with("OK ") {
                self.authenticating = false;
                return Ok(());
            }
            if line != "DATA" && !line.starts_with("DATA ") {
                return Err(Error::Auth(line));
            }
        }
        if self.inbox.len() > 4096 {
            return Err(Error::Auth("no end of line".into()));
        }
        Ok(())
    }

    /// One read, waiting at most until `deadline`.
    fn fill(&mut self, deadline: Instant, what: &str) -> Result<()> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Timeout(what.to_string()));
        }
        self.sock.set_read_timeout(Some(left))?;
        let mut chunk = [0u8; 8192];
        match (&self.sock).read(&mut chunk) {
            Ok(0) => Err(Error::Closed),
            Ok(n) => {
                self.inbox.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Err(Error::Timeout(what.to_string()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    /// A private dbus-daemon on a socket of its own, stopped on drop.
    struct Daemon {
        child: Child,
        dir: std::path::PathBuf,
    }

    impl Daemon {
        fn start() -> Daemon {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let dir = std::env::temp_dir().join(format!("hull-dbus-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let sock = dir.join("bus");
            // A configuration of its own: no system files needed (the
            // cgroup v2 lane's VM has only the daemon's binary).
            let conf = dir.join("bus.conf");
            std::fs::write(
                &conf,
                format!(
                    "<busconfig><type>session</type><listen>unix:path={}</listen>\
                     <auth>EXTERNAL</auth><policy context=\"default\">\
                     <allow send_destination=\"*\" eavesdrop=\"true\"/><allow eavesdrop=\"true\"/>\
                     <allow own=\"*\"/></policy></busconfig>",
                    sock.display()
                ),
            )
            .unwrap();
            let mut child = Command::new("dbus-daemon")
                .args(["--nofork", "--nopidfile"])
                .arg(format!("--config-file={}", conf.display()))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("dbus-daemon is installed (make deps)");
            for _ in 0..500 {
                if sock.exists() {
                    break;
                }
                assert!(child.try_wait().unwrap().is_none(), "dbus-daemon exited");
                std::thread::sleep(Duration::from_millis(10));
            }
            Daemon { child, dir }
        }

        fn bus(&self) -> Bus {
            Bus::connect(&self.dir.join("bus"), true).unwrap()
        }
    }

    impl Drop for Daemon {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn dbus_call(bus: &mut Bus, member: &str, args: &[Value]) -> Result<Vec<Value>> {
        let (d, p) = ("org.freedesktop.DBus", "/org/freedesktop/DBus");
        bus.call(d, p, d, member, args, soon())
    }

    /// What systemd's StartTransientUnit takes, with a property of each
    /// kind hull sends (`ay` for AllowedCPUs, where youki once sent `at`).
    fn transient_unit_args() -> Vec<Value> {
        let prop = |name: &str, v: Value| {
            Value::Struct(vec![Value::Str(name.into()), Value::Variant(Box::new(v))])
        };
        vec![
            Value::Str("hull-x.scope".into()),
            Value::Str("replace".into()),
            Value::Array(
                "(sv)".into(),
                vec![
                    prop("Delegate", Value::Bool(true)),
                    prop("PIDs", Value::Array("u".into(), vec![Value::U32(42)])),
                    prop("MemoryMax", Value::U64(u64::MAX)),
                    prop(
                        "AllowedCPUs",
                        Value::Array("y".into(), vec![Value::Byte(3)]),
                    ),
                    prop(
                        "DeviceAllow",
                        Value::Array(
                            "(ss)".into(),
                            vec![Value::Struct(vec![
                                Value::Str("char-pts".into()),
                                Value::Str("rwm".into()),
                            ])],
                        ),
                    ),
                    prop("CPUWeight", Value::U64(100)),
                    prop("Slice", Value::Str("system.slice".into())),
                ],
            ),
            Value::Array("(sa(sv))".into(), vec![]),
        ]
    }

    #[test]
    fn signatures_are_systemds() {
        let args = transient_unit_args();
        let sig: String = args.iter().map(Value::signature).collect();
        assert_eq!(sig, "ssa(sv)a(sa(sv))");
        let Value::Array(_, props) = &args[2] else {
            panic!()
        };
        let sigs: Vec<String> = props
            .iter()
            .map(|p| match p {
                Value::Struct(f) => match &f[1] {
                    Value::Variant(v) => v.signature(),
                    _ => panic!(),
                },
                _ => panic!(),
            })
            .collect();
        assert_eq!(sigs, ["b", "au", "t", "ay", "a(ss)", "t", "s"]);
    }

    #[test]
    fn a_call_reads_back_as_written() {
        let args = transient_unit_args();
        let bytes = wire::method_call(
            7,
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
            "StartTransientUnit",
            &args,
        );
        assert_eq!(
            wire::message_len(&bytes, MAX_MESSAGE).unwrap(),
            Some(bytes.len())
        );
        let m = wire::parse(&bytes).unwrap();
        assert_eq!((m.kind, m.serial), (wire::METHOD_CALL, 7));
        assert_eq!(m.member.as_deref(), Some("StartTransientUnit"));
        assert_eq!(m.signature, "ssa(sv)a(sa(sv))");
        assert_eq!(m.body, args);
    }

    /// Truncated, oversized and garbage input is an error, never a panic
    /// or a huge allocation.
    #[test]
    fn malformed_messages_are_errors() {
        let bytes = wire::method_call(1, "d", "/p", "i.f", "M", &transient_unit_args());
        for cut in 0..bytes.len() {
            let _ = wire::parse(&bytes[..cut]);
        }
        let mut huge = bytes.clone();
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(wire::message_len(&huge, MAX_MESSAGE).is_err());
        assert!(wire::message_len(b"X123456789abcdef", MAX_MESSAGE).is_err());
        let mut seed = 0x9e37_79b9u32;
        for _ in 0..5000 {
            let mut b = bytes.clone();
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                let i = seed as usize % b.len();
                b[i] = (seed >> 8) as u8;
            }
            let _ = wire::parse(&b);
        }
    }

    /// Through a real dbus-daemon, which checks every message it routes:
    /// one connection calls the other with StartTransientUnit's arguments,
    /// the other reads them back as sent.
    #[test]
    fn a_real_bus_routes_our_messages_intact() {
        let daemon = Daemon::start();
        let mut server = daemon.bus();
        let name = dbus_call(
            &mut server,
            "RequestName",
            &[Value::Str("org.hull.Test".into()), Value::U32(4)],
        )
        .unwrap();
        assert_eq!(name, [Value::U32(1)], "primary owner");
        let mut client = daemon.bus();
        let args = transient_unit_args();
        client
            .send(
                "org.hull.Test",
                "/org/hull",
                "org.hull.Test",
                "Start",
                &args,
            )
            .unwrap();
        let call = loop {
            let m = server.next_message(soon(), "the call").unwrap();
            if m.kind == wire::METHOD_CALL {
                break m;
            }
        };
        assert_eq!(call.member.as_deref(), Some("Start"));
        assert_eq!(call.body, args);
    }

    #[test]
    fn hello_error_replies_and_kept_signals() {
        let daemon = Daemon::start();
        let mut bus = daemon.bus();
        let id = dbus_call(&mut bus, "GetId", &[]).unwrap();
        assert!(
            matches!(&id[..], [Value::Str(s)] if s.len() == 32),
            "{id:?}"
        );
        let err = dbus_call(&mut bus, "NoSuchMethod", &[]).unwrap_err();
        assert_eq!(
            err.name(),
            Some("org.freedesktop.DBus.Error.UnknownMethod"),
            "{err}"
        );
        let rule = "type='signal',interface='org.freedesktop.DBus',member='NameOwnerChanged'";
        dbus_call(&mut bus, "AddMatch", &[Value::Str(rule.into())]).unwrap();
        let other = daemon.bus();
        // A reply read after the signal: the signal is kept for later.
        dbus_call(&mut bus, "GetId", &[]).unwrap();
        let sig = bus
            .wait_signal(|m| m.member.as_deref() == Some("NameOwnerChanged"), soon())
            .unwrap();
        assert_eq!(sig.signature, "sss");
        drop(other);
    }

    #[test]
    fn a_silent_or_refusing_peer_fails_in_time() {
        let dir = std::env::temp_dir().join(format!("hull-dbus-fake-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let mut bus = Bus::connect(&path, true).unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        let start = Instant::now();
        let err = bus
            .wait_reply(1, Instant::now() + Duration::from_millis(200))
            .unwrap_err();
        assert!(matches!(err, Error::Timeout(_)), "{err}");
        assert!(start.elapsed() < Duration::from_secs(2));
        peer.write_all(b"REJECTED EXTERNAL\r\n").unwrap();
        let err = bus.wait_reply(1, soon()).unwrap_err();
        assert!(
            matches!(err, Error::Auth(ref l) if l == "REJECTED EXTERNAL"),
            "{err}"
        );
        drop(peer);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// On a host where systemd is PID 1 (the systemd lane): systemd's
    /// manager answers this client on the system bus, and a transient scope
    /// started with it (Delegate, PIDs, as the driver will) holds the
    /// process where runc's rule puts it, its job's JobRemoved signal
    /// arriving. Said and skipped elsewhere (our hosts have no systemd).
    #[test]
    fn systemd_starts_a_scope_for_this_client() {
        if !std::path::Path::new("/run/systemd/system").is_dir() {
            eprintln!("skipped: systemd is not PID 1 here (the systemd lane runs this)");
            return;
        }
        let (dest, path, manager) = (
            "org.freedesktop.systemd1",
            "/org/freedesktop/systemd1",
            "org.freedesktop.systemd1.Manager",
        );
        let mut bus = Bus::system().unwrap();
        let get = [Value::Str(manager.into()), Value::Str("Version".into())];
        let v = bus
            .call(
                dest,
                path,
                "org.freedesktop.DBus.Properties",
                "Get",
                &get,
                soon(),
            )
            .unwrap();
        assert!(
            matches!(&v[..], [Value::Variant(b)] if b.as_str().is_some_and(|s| !s.is_empty())),
            "{v:?}"
        );
        let err = bus
            .call(
                dest,
                path,
                manager,
                "GetUnit",
                &[Value::Str("hull-no-such.scope".into())],
                soon(),
            )
            .unwrap_err();
        assert_eq!(
            err.name(),
            Some("org.freedesktop.systemd1.NoSuchUnit"),
            "{err}"
        );
        let rule = "type='signal',interface='org.freedesktop.systemd1.Manager',member='JobRemoved'";
        let (d, p) = ("org.freedesktop.DBus", "/org/freedesktop/DBus");
        bus.call(d, p, d, "AddMatch", &[Value::Str(rule.into())], soon())
            .unwrap();
        bus.call(dest, path, manager, "Subscribe", &[], soon())
            .unwrap();
        let mut child = Command::new("sleep").arg("100").spawn().unwrap();
        let unit = format!("hull-dbus-test-{}.scope", child.id());
        let mut args = transient_unit_args();
        args[0] = Value::Str(unit.clone());
        if let Value::Array(_, props) = &mut args[2] {
            props.retain(|p| !matches!(p, Value::Struct(f) if f[0] == Value::Str("AllowedCPUs".into()) || f[0] == Value::Str("DeviceAllow".into())));
            props[1] = Value::Struct(vec![
                Value::Str("PIDs".into()),
                Value::Variant(Box::new(Value::Array(
                    "u".into(),
                    vec![Value::U32(child.id())],
                ))),
            ]);
        }
        let job = bus
            .call(dest, path, manager, "StartTransientUnit", &args, soon())
            .unwrap();
        let job = job[0].as_str().unwrap().to_string();
        let done = bus
            .wait_signal(
                |m| m.body.get(1).and_then(Value::as_str) == Some(job.as_str()),
                soon(),
            )
            .unwrap();
        assert_eq!(
            done.body.get(3).and_then(Value::as_str),
            Some("done"),
            "{done:?}"
        );
        let cgroup = std::fs::read_to_string(format!("/proc/{}/cgroup", child.id())).unwrap();
        let _ = bus.call(
            dest,
            path,
            manager,
            "StopUnit",
            &[Value::Str(unit.clone()), Value::Str("replace".into())],
            soon(),
        );
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(cgroup.trim(), format!("0::/system.slice/{unit}"));
    }

    #[test]
    fn addresses() {
        assert_eq!(
            socket_of("unix:path=/run/dbus/system_bus_socket"),
            Some("/run/dbus/system_bus_socket")
        );
        assert_eq!(socket_of("unix:guid=x,path=/a;tcp:host=h"), Some("/a"));
        assert_eq!(socket_of("tcp:host=h,port=1"), None);
    }
}
