//! Which frame received descriptors belong to.
//!
//! A writer sends at most one frame with descriptors per `sendmsg`, and that frame ends the
//! `sendmsg` (frames without descriptors may come before it). The kernel hands a `sendmsg`'s
//! descriptors to the `recvmsg` that reads the first of its bytes, and stops that read after
//! them. So the descriptors of one `recvmsg` are one [`FdGroup`]: those of exactly one frame,
//! the next frame that announces any.
//!
//! When the receiving process has no descriptor numbers left, the kernel installs what it can,
//! drops the rest and says so (`MSG_CTRUNC`): that group is *truncated*, and its frame is
//! handed on with the descriptors that did arrive, the first ones in the order sent (its receiver refuses what it cannot use)
//! instead of breaking the channel. A short group that is not truncated, or a group with more
//! descriptors than its frame announced, is the peer breaking the protocol.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;

use crate::WireError;

/// The descriptors that arrived with one `recvmsg`.
#[derive(Debug)]
pub(crate) struct FdGroup {
    pub(crate) fds: Vec<OwnedFd>,
    /// The kernel dropped some (`MSG_CTRUNC`): this process is out of descriptors.
    pub(crate) truncated: bool,
}

/// The descriptors of a frame that announced `announced`, from the queued groups.
pub(crate) fn claim(
    groups: &mut VecDeque<FdGroup>,
    announced: usize,
) -> Result<Vec<OwnedFd>, WireError> {
    if announced == 0 {
        return Ok(Vec::new());
    }
    let Some(group) = groups.pop_front() else {
        return Err(WireError::MissingFds {
            expected: announced,
            received: 0,
        });
    };
    let received = group.fds.len();
    if received > announced {
        return Err(WireError::UnexpectedFds {
            count: received - announced,
        });
    }
    if received < announced && !group.truncated {
        return Err(WireError::MissingFds {
            expected: announced,
            received,
        });
    }
    Ok(group.fds)
}

/// How many descriptors wait in `groups`.
pub(crate) fn queued(groups: &VecDeque<FdGroup>) -> usize {
    groups.iter().map(|group| group.fds.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(count: usize, truncated: bool) -> FdGroup {
        let fds = (0..count)
            .map(|_| std::fs::File::open("/dev/null").unwrap().into())
            .collect();
        FdGroup { fds, truncated }
    }

    #[test]
    fn each_frame_takes_its_own_group_in_order() {
        let mut groups = VecDeque::from([group(1, false), group(2, false)]);
        assert!(
            claim(&mut groups, 0).unwrap().is_empty(),
            "no group for none"
        );
        assert_eq!(claim(&mut groups, 1).unwrap().len(), 1);
        assert_eq!(claim(&mut groups, 2).unwrap().len(), 2);
        assert!(matches!(
            claim(&mut groups, 1),
            Err(WireError::MissingFds {
                expected: 1,
                received: 0
            })
        ));
    }

    #[test]
    fn a_truncated_group_hands_on_what_arrived_and_the_next_frame_is_not_robbed() {
        let mut groups = VecDeque::from([group(0, true), group(1, false)]);
        assert!(
            claim(&mut groups, 1).unwrap().is_empty(),
            "lost, not an error"
        );
        assert_eq!(claim(&mut groups, 1).unwrap().len(), 1, "its own");
    }

    #[test]
    fn a_short_or_long_group_that_was_not_truncated_is_a_violation() {
        let mut short = VecDeque::from([group(1, false)]);
        assert!(matches!(
            claim(&mut short, 2),
            Err(WireError::MissingFds { .. })
        ));
        let mut long = VecDeque::from([group(3, false)]);
        assert!(matches!(
            claim(&mut long, 1),
            Err(WireError::UnexpectedFds { count: 2 })
        ));
    }
}
