//! The floor: what the fan-out costs with no server in the way.
//!
//! An ideal server, this tool re-run as a child process (`--floor-server`), accepts the
//! sockets with a bare WebSocket handshake (no authentication, no HTTP framework) and, for
//! each round, writes one pre-framed push to every socket from a few threads: one `write`
//! per socket and nothing else. The tool's readers and its /proc measurements are the same
//! as for a real server, so the child's CPU per delivery is the lower bound of any server's
//! on this machine at that moment: the kernel's loopback send, which includes the
//! receiver's TCP input and the wake-up of the tool's reader, both charged to the sender.
//! It is a process of its own because one process may hold only 20,000 files here, and
//! 10,000 sockets need 10,000 on each side.
//!
//! The parent drives it over the child's stdin, a line per command:
//! `send <id> <title>` (write that push to every socket, answer nothing) and `stats`
//! (answer `stats <accepted> <write errors>`). Its first stdout line is `listening <addr>`.
//! It exits when its stdin closes.

use std::io::{BufRead, BufReader, Read as _, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use bytes::Bytes;
use serde_json::json;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// A handshake request larger than this is refused (the tool's are about 300 bytes).
const MAX_REQUEST: usize = 4096;

/// One global push as the contract shapes it, framed as an unmasked text frame.
pub fn frame(id: usize, title: &str) -> anyhow::Result<Bytes> {
    let text = json!({
        "type": "global_notification",
        "notification": {
            "id": id,
            "title": title,
            "message": "herald-bench announcement",
            "level": "info",
            // A server's timestamp has this length; the tool never reads it.
            "created_at": "2026-01-01T00:00:00Z",
            "expires_at": null,
        }
    })
    .to_string();
    let mut out = Vec::with_capacity(text.len() + 10);
    Frame::message(text, OpCode::Data(Data::Text), true)
        .format(&mut out)
        .context("floor: framing")?;
    Ok(Bytes::from(out))
}

#[derive(Default)]
struct Counts {
    accepted: AtomicU64,
    write_errors: AtomicU64,
}

enum Cmd {
    Add(TcpStream),
    Send(Bytes),
}

/// The ideal server inside the child: one accepting thread, `threads` sending threads.
struct Floor {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
    senders: Vec<mpsc::Sender<Cmd>>,
    threads: Vec<JoinHandle<()>>,
}

impl Floor {
    /// Listens on an ephemeral port of 127.0.0.1 and starts the threads.
    fn start(threads: usize) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").context("floor: binding 127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Counts::default());
        let mut senders = Vec::new();
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let (tx, rx) = mpsc::channel();
            senders.push(tx);
            let counts = Arc::clone(&counts);
            let handle = std::thread::Builder::new()
                .name(format!("floor-send-{i}"))
                .spawn(move || send_loop(&rx, &counts))
                .context("floor: spawning a sender")?;
            handles.push(handle);
        }
        let to_senders = senders.clone();
        let (stop2, counts2) = (Arc::clone(&stop), Arc::clone(&counts));
        let acceptor = std::thread::Builder::new()
            .name("floor-accept".into())
            .spawn(move || accept_loop(&listener, &to_senders, &stop2, &counts2))
            .context("floor: spawning the acceptor")?;
        handles.push(acceptor);
        Ok(Self {
            addr,
            stop,
            counts,
            senders,
            threads: handles,
        })
    }

    /// Has every sending thread write `frame` to each of its sockets; returns at once.
    fn send(&self, frame: &Bytes) -> anyhow::Result<()> {
        for tx in &self.senders {
            tx.send(Cmd::Send(frame.clone()))
                .map_err(|_| anyhow!("floor: a sender thread has stopped"))?;
        }
        Ok(())
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the acceptor out of its blocking accept so that it sees `stop`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        // Closing the channels ends the senders, which close their sockets.
        self.senders.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn send_loop(rx: &mpsc::Receiver<Cmd>, counts: &Counts) {
    let mut streams: Vec<TcpStream> = Vec::new();
    for cmd in rx {
        match cmd {
            Cmd::Add(s) => streams.push(s),
            Cmd::Send(frame) => {
                let mut failed = 0;
                for s in &mut streams {
                    if s.write_all(&frame).is_err() {
                        failed += 1;
                    }
                }
                counts.write_errors.fetch_add(failed, Ordering::Relaxed);
            }
        }
    }
    for s in &streams {
        let _ = s.shutdown(Shutdown::Both);
    }
}

fn accept_loop(listener: &TcpListener, senders: &[mpsc::Sender<Cmd>], stop: &AtomicBool, counts: &Counts) {
    let mut next = 0;
    for conn in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        match conn {
            Ok(mut stream) => {
                // A failed handshake costs only that socket: the tool counts it as failed.
                if handshake(&mut stream).is_ok() && senders[next % senders.len()].send(Cmd::Add(stream)).is_ok() {
                    next += 1;
                    counts.accepted.fetch_add(1, Ordering::Relaxed);
                }
            }
            // Out of files, say: the connection stays queued, so do not spin on it.
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Reads one upgrade request and answers 101 with its accept key; nothing else is checked.
fn handshake(stream: &mut TcpStream) -> anyhow::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_nodelay(true)?;
    let mut buf = [0u8; MAX_REQUEST];
    let mut len = 0;
    let key = loop {
        let n = stream.read(&mut buf[len..])?;
        if n == 0 {
            bail!("closed during the handshake");
        }
        len += n;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        if req.parse(&buf[..len])?.is_complete() {
            let key = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-key"))
                .ok_or_else(|| anyhow!("no Sec-WebSocket-Key"))?;
            break derive_accept_key(key.value);
        }
        if len == buf.len() {
            bail!("handshake request over {MAX_REQUEST} bytes");
        }
    };
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Accept: {key}\r\n\r\n"
    );
    stream.write_all(response.as_bytes())?;
    stream.set_read_timeout(None)?;
    Ok(())
}

/// The child's main loop: serves commands from `input` until it closes.
fn serve_on(threads: usize, input: impl BufRead, mut output: impl Write) -> anyhow::Result<()> {
    let floor = Floor::start(threads)?;
    writeln!(output, "listening {}", floor.addr)?;
    output.flush()?;
    for line in input.lines() {
        let line = line?;
        let (cmd, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        match cmd {
            "send" => {
                let (id, title) = rest.split_once(' ').ok_or_else(|| anyhow!("send <id> <title>"))?;
                floor.send(&frame(id.parse()?, title)?)?;
            }
            "stats" => {
                let c = &floor.counts;
                let (accepted, errors) = (
                    c.accepted.load(Ordering::Relaxed),
                    c.write_errors.load(Ordering::Relaxed),
                );
                writeln!(output, "stats {accepted} {errors}")?;
                output.flush()?;
            }
            other => bail!("floor: unknown command {other:?}"),
        }
    }
    Ok(())
}

/// `herald-bench --floor-server`: the child's entry point.
pub fn serve(threads: usize) -> anyhow::Result<()> {
    serve_on(threads, std::io::stdin().lock(), std::io::stdout().lock())
}

/// The parent's handle on the child.
pub struct FloorProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    addr: SocketAddr,
}

impl FloorProcess {
    /// Starts this same binary as the ideal server and waits for its address.
    pub fn spawn(threads: usize) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("floor: finding this tool's binary")?;
        let mut child = Command::new(exe)
            .args(["--floor-server", "--floor-threads", &threads.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("floor: starting the ideal server")?;
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().ok_or_else(|| anyhow!("floor: no stdout"))?);
        let mut first = String::new();
        stdout.read_line(&mut first)?;
        let addr = first
            .trim()
            .strip_prefix("listening ")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| anyhow!("floor: the ideal server said {first:?}"))?;
        Ok(Self {
            child,
            stdin,
            stdout,
            addr,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn command(&mut self, line: &str) -> anyhow::Result<()> {
        let stdin = self.stdin.as_mut().ok_or_else(|| anyhow!("floor: stdin closed"))?;
        writeln!(stdin, "{line}")?;
        stdin.flush()?;
        Ok(())
    }

    /// Has the child write push `id` titled `title` to every socket; returns at once.
    pub fn send(&mut self, id: usize, title: &str) -> anyhow::Result<()> {
        if title.contains(['\n', ' ']) {
            bail!("floor: titles are one word");
        }
        self.command(&format!("send {id} {title}"))
    }

    /// Sockets the child accepted and writes that failed, so far.
    pub fn stats(&mut self) -> anyhow::Result<(u64, u64)> {
        self.command("stats")?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        let mut words = line.split_whitespace().skip(1).map(str::parse::<u64>);
        match (words.next(), words.next()) {
            (Some(Ok(a)), Some(Ok(e))) => Ok((a, e)),
            _ => bail!("floor: the ideal server answered {line:?}"),
        }
    }
}

impl Drop for FloorProcess {
    fn drop(&mut self) {
        // Closing its stdin ends the child; kill it if it has not gone within a few seconds.
        self.stdin = None;
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::{self, Message};

    #[test]
    fn every_client_gets_every_round_once() {
        let (cmd_rx, mut cmd_tx) = std::io::pipe().expect("pipe");
        let (out_rx, out_tx) = std::io::pipe().expect("pipe");
        let server = std::thread::spawn(move || serve_on(2, BufReader::new(cmd_rx), out_tx));
        let mut out = BufReader::new(out_rx);
        let mut line = String::new();
        out.read_line(&mut line).expect("listening line");
        let addr: SocketAddr = line
            .trim()
            .strip_prefix("listening ")
            .expect("listening")
            .parse()
            .expect("addr");
        let url = format!("ws://{addr}/ws/notifications/");
        // tungstenite checks the 101's accept key, so a wrong one fails here.
        let mut clients: Vec<_> = (0..3)
            .map(|_| tungstenite::connect(url.as_str()).expect("handshake").0)
            .collect();
        let mut stats = || {
            writeln!(cmd_tx, "stats").expect("command");
            let mut line = String::new();
            out.read_line(&mut line).expect("stats line");
            line
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while stats() != "stats 3 0\n" && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(stats(), "stats 3 0\n");
        for round in 0..2 {
            let title = format!("hbtest:g:{round}");
            writeln!(cmd_tx, "send {round} {title}").expect("command");
            for c in &mut clients {
                if let tungstenite::stream::MaybeTlsStream::Plain(s) = c.get_mut() {
                    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
                }
                let Message::Text(text) = c.read().expect("a frame") else {
                    panic!("not a text frame");
                };
                let v: serde_json::Value = serde_json::from_str(text.as_str()).expect("JSON");
                assert_eq!(v["type"], "global_notification");
                assert_eq!(v["notification"]["title"], title.as_str());
                assert_eq!(v["notification"]["id"], round);
            }
        }
        // Closing the commands ends the server, which closes the sockets.
        drop(cmd_tx);
        server.join().expect("server thread").expect("served");
        for c in &mut clients {
            assert!(!matches!(c.read(), Ok(Message::Text(_))), "nothing more was sent");
        }
    }
}
