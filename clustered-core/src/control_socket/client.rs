//! The client's end of the control socket (what `clusterctl` uses).

use std::path::Path;

use futures_util::{SinkExt, StreamExt};
use tokio::net::UnixStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use super::protocol::{ControlCommand, ControlReply, ControlRequest, MAX_REPLY};
use crate::{Error, IpcError};

/// Sends `command` to the master listening at `path` and returns its reply.
pub async fn request(path: &Path, command: ControlCommand) -> Result<ControlReply, Error> {
    let mut framed = connect_and_send(path, command).await?;
    next_reply(path, &mut framed).await?.ok_or_else(|| {
        failed(
            path,
            "the master closed the connection without answering".into(),
        )
    })
}

/// Sends `command` (a following `logs`) and hands each reply to `each` until the master hangs
/// up (it stopped) or `each` says to stop.
pub async fn follow(
    path: &Path,
    command: ControlCommand,
    mut each: impl FnMut(ControlReply) -> bool,
) -> Result<(), Error> {
    let mut framed = connect_and_send(path, command).await?;
    while let Some(reply) = next_reply(path, &mut framed).await? {
        if !each(reply) {
            break;
        }
    }
    Ok(())
}

fn failed(path: &Path, reason: String) -> Error {
    Error::ControlSocket {
        path: path.to_owned(),
        reason,
    }
}

async fn connect_and_send(
    path: &Path,
    command: ControlCommand,
) -> Result<Framed<UnixStream, LengthDelimitedCodec>, Error> {
    let failed = |reason: String| failed(path, reason);
    let stream = UnixStream::connect(path).await.map_err(|error| {
        failed(format!(
            "cannot connect ({error}); is a master running with CLUSTER_CONTROL_SOCKET set to this path?"
        ))
    })?;
    let codec = LengthDelimitedCodec::builder()
        .max_frame_length(MAX_REPLY)
        .new_codec();
    let mut framed = Framed::new(stream, codec);
    let request = serde_json::to_vec(&ControlRequest::new(command)).map_err(IpcError::from)?;
    framed
        .send(bytes::Bytes::from(request))
        .await
        .map_err(|error| failed(format!("cannot send: {error}")))?;
    Ok(framed)
}

/// The next reply, or `None` once the master has hung up.
async fn next_reply(
    path: &Path,
    framed: &mut Framed<UnixStream, LengthDelimitedCodec>,
) -> Result<Option<ControlReply>, Error> {
    let Some(frame) = framed.next().await else {
        return Ok(None);
    };
    let frame = frame.map_err(|error| failed(path, format!("cannot read the answer: {error}")))?;
    serde_json::from_slice(&frame)
        .map(Some)
        .map_err(|error| failed(path, format!("not an answer: {error}")))
}
