//! The master's side of worker output: each line a worker writes to stdout or stderr comes out
//! of the master's stdout or stderr prefixed with the worker's slot and the program's name, as
//! PM2 shows it (`2|app | listening`). Lines longer than [`MAX_LINE`] are cut. Terminal escape
//! sequences (colours) pass only to a terminal: log files, `clusterctl logs` and a master
//! whose output is a pipe get the plain text.

use std::io::{IsTerminal, Write};
use std::time::SystemTime;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{ChildStderr, ChildStdout};
use tokio::task::JoinHandle;

use crate::log_format::{LogFormat, json_line};
use crate::master::control::ClusterControl;
use crate::master::logs::{LogLine, LogStream};

/// The longest line passed on whole; a longer one is passed on in pieces.
pub(crate) const MAX_LINE: usize = 16 * 1024;

/// Starts relaying the worker of `slot`'s output, and keeping it in the master's log book;
/// the tasks end when the worker's pipes close.
pub(crate) fn relay(
    slot: usize,
    program: &str,
    format: LogFormat,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    control: &ClusterControl,
) -> Vec<JoinHandle<()>> {
    let source = Source {
        slot,
        prefix: format!("{slot}|{program} | "),
        format,
        control: control.clone(),
    };
    let mut tasks = Vec::new();
    if let Some(stdout) = stdout {
        tasks.push(tokio::spawn(relay_lines(
            stdout,
            source.clone(),
            LogStream::Out,
        )));
    }
    if let Some(stderr) = stderr {
        tasks.push(tokio::spawn(relay_lines(stderr, source, LogStream::Err)));
    }
    tasks
}

/// Whose lines a relay carries, and where it keeps them.
#[derive(Clone)]
struct Source {
    slot: usize,
    prefix: String,
    format: LogFormat,
    control: ClusterControl,
}

async fn relay_lines(mut pipe: impl AsyncRead + Unpin, source: Source, stream: LogStream) {
    let mut buffer = BytesMut::with_capacity(4096);
    let terminal = source.format == LogFormat::Text
        && match stream {
            LogStream::Out => std::io::stdout().is_terminal(),
            LogStream::Err => std::io::stderr().is_terminal(),
        };
    loop {
        let read = pipe.read_buf(&mut buffer).await.unwrap_or(0);
        while let Some(line) = next_line(&mut buffer, read == 0) {
            let plain = without_escapes(&line);
            let shown = if terminal { &line[..] } else { &plain[..] };
            match source.format {
                LogFormat::Text => write_line(stream, &prefixed(&source.prefix, shown)),
                LogFormat::Json => {
                    let (level, name) = match stream {
                        LogStream::Out => ("info", "out"),
                        LogStream::Err => ("error", "err"),
                    };
                    let text = String::from_utf8_lossy(shown);
                    let mut line = json_line(
                        SystemTime::now(),
                        level,
                        Some(source.slot),
                        Some(name),
                        &text,
                    );
                    line.push('\n');
                    write_line(stream, line.as_bytes());
                }
            }
            let line = LogLine {
                id: source.slot,
                stream,
                line: String::from_utf8_lossy(&plain).into_owned(),
            };
            source
                .control
                .logs()
                .record(line, &prefixed(&source.prefix, &plain));
        }
        if read == 0 {
            return;
        }
    }
}

/// The next whole line in `buffer` (without its newline), a piece of [`MAX_LINE`] bytes of a
/// longer one, or at the end whatever is left.
fn next_line(buffer: &mut BytesMut, at_end: bool) -> Option<BytesMut> {
    if let Some(newline) = buffer.iter().position(|byte| *byte == b'\n') {
        let mut line = buffer.split_to(newline + 1);
        line.truncate(newline);
        return Some(line);
    }
    if buffer.len() >= MAX_LINE {
        return Some(buffer.split_to(MAX_LINE));
    }
    (at_end && !buffer.is_empty()).then(|| buffer.split())
}

/// `line` with its prefix and a newline.
fn prefixed(prefix: &str, line: &[u8]) -> Vec<u8> {
    let mut text = Vec::with_capacity(prefix.len() + line.len() + 1);
    text.extend_from_slice(prefix.as_bytes());
    text.extend_from_slice(line);
    text.push(b'\n');
    text
}

/// Writes `text` (a whole line) to the master's stdout or stderr.
fn write_line(stream: LogStream, text: &[u8]) {
    // The master's own output failing is nothing a worker's line can help with.
    let _ = match stream {
        LogStream::Out => std::io::stdout().lock().write_all(text),
        LogStream::Err => std::io::stderr().lock().write_all(text),
    };
}

/// `line` without terminal escape sequences: CSI (`ESC [ … final`, colours and cursor moves),
/// OSC (`ESC ] … BEL` or `ESC \`) and two-byte `ESC x` ones.
fn without_escapes(line: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    const ESC: u8 = 0x1b;
    if !line.contains(&ESC) {
        return line.into();
    }
    let mut plain = Vec::with_capacity(line.len());
    let mut bytes = line.iter().copied().peekable();
    while let Some(byte) = bytes.next() {
        if byte != ESC {
            plain.push(byte);
            continue;
        }
        match bytes.next() {
            // CSI: parameters and intermediates, then one final byte in 0x40..=0x7e.
            Some(b'[') => {
                for byte in bytes.by_ref() {
                    if (0x40..=0x7e).contains(&byte) {
                        break;
                    }
                }
            }
            // OSC: up to BEL, or the string terminator ESC \.
            Some(b']') => {
                while let Some(byte) = bytes.next() {
                    if byte == 0x07 || (byte == ESC && bytes.next_if_eq(&b'\\').is_some()) {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    plain.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_taken_out_and_the_text_is_left() {
        let coloured = b"\x1b[2m2026-12-01\x1b[0m \x1b[33m WARN\x1b[0m \x1b[1;31mbad\x1b[0m";
        assert_eq!(&*without_escapes(coloured), b"2026-12-01  WARN bad");
        assert_eq!(&*without_escapes(b"\x1b]0;title\x07text"), b"text");
        assert_eq!(&*without_escapes(b"\x1b]8;;url\x1b\\link"), b"link");
        assert_eq!(&*without_escapes(b"plain"), b"plain");
        assert_eq!(
            &*without_escapes(b"cut \x1b[3"),
            b"cut ",
            "a cut sequence goes whole"
        );
    }

    #[test]
    fn lines_are_split_at_newlines_cut_when_too_long_and_flushed_at_the_end() {
        let mut buffer = BytesMut::from(&b"one\ntwo\nthr"[..]);
        assert_eq!(next_line(&mut buffer, false).as_deref(), Some(&b"one"[..]));
        assert_eq!(next_line(&mut buffer, false).as_deref(), Some(&b"two"[..]));
        assert_eq!(next_line(&mut buffer, false), None, "a partial line waits");
        assert_eq!(next_line(&mut buffer, true).as_deref(), Some(&b"thr"[..]));
        let mut long = BytesMut::from(&vec![b'x'; MAX_LINE + 5][..]);
        assert_eq!(
            next_line(&mut long, false).map(|line| line.len()),
            Some(MAX_LINE)
        );
        assert_eq!(next_line(&mut long, false), None);
    }
}
