//! The client's end of the control socket (what `clusterctl` uses).

use std::path::Path;

use futures_util::{SinkExt, StreamExt};
use tokio::net::UnixStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use super::protocol::{ControlCommand, ControlReply, ControlRequest, MAX_FRAME};
use crate::Error;

/// Sends `command` to the master listening at `path` and returns its reply.
pub async fn request(path: &Path, command: ControlCommand) -> Result<ControlReply, Error> {
    let failed = |reason: String| Error::ControlSocket {
        path: path.to_owned(),
        reason,
    };
    let stream = UnixStream::connect(path).await.map_err(|error| {
        failed(format!(
            "cannot connect ({error}); is a master running with CLUSTER_CONTROL_SOCKET set to this path?"
        ))
    })?;
    let codec = LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME)
        .new_codec();
    let mut framed = Framed::new(stream, codec);
    let request = serde_json::to_vec(&ControlRequest::new(command))?;
    framed
        .send(bytes::Bytes::from(request))
        .await
        .map_err(|error| failed(format!("cannot send: {error}")))?;
    let frame = framed
        .next()
        .await
        .ok_or_else(|| failed("the master closed the connection without answering".into()))?
        .map_err(|error| failed(format!("cannot read the answer: {error}")))?;
    serde_json::from_slice(&frame).map_err(|error| failed(format!("not an answer: {error}")))
}
