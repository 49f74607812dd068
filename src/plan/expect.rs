//! The policy's own expectations for `kekkai audit` (`audit.must-deny`, `audit.must-allow`):
//! `read:/etc/shadow`, `write:/usr`, `exec:/tmp/x`, `connect:127.0.0.1:22`, `bind:8080`, checked
//! when the policy is compiled and tried inside the sandbox by the audit's battery.

use serde::{Deserialize, Serialize};

/// One expectation: an action on a target that must be denied or must be allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expectation {
    /// `must-deny` or `must-allow`.
    pub deny: bool,
    /// The action.
    pub action: String,
    /// Its target.
    pub target: String,
}

impl Expectation {
    /// Parses `ACTION:TARGET`.
    pub fn parse(text: &str, deny: bool) -> Result<Expectation, String> {
        let Some((action, target)) = text.split_once(':') else {
            return Err(format!(
                "`{text}`: write ACTION:TARGET, e.g. read:/etc/shadow"
            ));
        };
        match action {
            "read" | "write" | "exec" => {
                if !target.starts_with('/') {
                    return Err(format!("`{text}`: the path must be absolute"));
                }
            }
            "connect" => {
                let port = target
                    .rsplit_once(':')
                    .and_then(|(_, p)| p.parse::<u16>().ok());
                if port.is_none() {
                    return Err(format!("`{text}`: write connect:HOST:PORT"));
                }
            }
            "bind" => {
                if target.parse::<u16>().is_err() {
                    return Err(format!("`{text}`: write bind:PORT"));
                }
            }
            _ => {
                return Err(format!(
                    "`{action}` is not one of read, write, exec, connect, bind"
                ));
            }
        }
        Ok(Expectation {
            deny,
            action: action.to_owned(),
            target: target.to_owned(),
        })
    }

    /// The report name.
    pub fn name(&self) -> String {
        format!(
            "{}:{}:{}",
            if self.deny { "must-deny" } else { "must-allow" },
            self.action,
            self.target
        )
    }
}
