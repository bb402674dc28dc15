//! A minimal client of the associate terminal's API, as a page uses it: log in with a PIN
//! (session cookie) and listen to the server-sent events of `GET /api/v1/events`.
//! Used by the `scan-to-screen` scenario and by black-box tests of `run` and `demo`.

use anyhow::{anyhow, Context};
use serde_json::json;

/// A logged-in terminal session.
pub struct TerminalClient {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

impl TerminalClient {
    /// Log in at the terminal served on `base` (`http://127.0.0.1:8081`).
    pub async fn login(base: &str, staff: &str, pin: &str) -> anyhow::Result<TerminalClient> {
        let http = reqwest::Client::new();
        let response = http
            .post(format!("{base}/api/v1/session"))
            .json(&json!({"staff": staff, "pin": pin}))
            .send()
            .await
            .with_context(|| format!("login at {base}"))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(anyhow!("login at {base} refused: {status} {body}"));
        }
        let cookie = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .ok_or_else(|| anyhow!("login at {base} set no cookie"))?
            .to_string();
        Ok(TerminalClient {
            http,
            base: base.to_string(),
            cookie,
        })
    }

    /// Open the page's live event stream.
    pub async fn events(&self) -> anyhow::Result<EventStream> {
        let response = self
            .http
            .get(format!("{}/api/v1/events", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .context("opening the event stream")?;
        if !response.status().is_success() {
            return Err(anyhow!("event stream refused: {}", response.status()));
        }
        Ok(EventStream {
            response,
            buf: Vec::new(),
        })
    }
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

/// Events as they arrive on an open stream.
pub struct EventStream {
    response: reqwest::Response,
    buf: Vec<u8>,
}

impl EventStream {
    /// The next event; `None` when the server closed the stream. Keep-alive comments are
    /// skipped.
    pub async fn next(&mut self) -> anyhow::Result<Option<SseEvent>> {
        loop {
            while let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..end + 2).collect();
                if let Some(event) = parse_block(&String::from_utf8_lossy(&block)) {
                    return Ok(Some(event));
                }
            }
            match self.response.chunk().await.context("reading events")? {
                Some(bytes) => self.buf.extend_from_slice(&bytes),
                None => return Ok(None),
            }
        }
    }
}

/// An event block's `event:` and `data:` lines; `None` for comments (keep-alives).
fn parse_block(block: &str) -> Option<SseEvent> {
    let mut event = String::new();
    let mut data: Vec<&str> = Vec::new();
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            event = v.trim_start().to_string();
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push(v.strip_prefix(' ').unwrap_or(v));
        }
    }
    if event.is_empty() && data.is_empty() {
        return None;
    }
    Some(SseEvent {
        event: if event.is_empty() {
            "message".into()
        } else {
            event
        },
        data: data.join("\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_blocks_give_name_and_data_and_comments_give_nothing() {
        assert_eq!(
            parse_block("event: scan\ndata: {\"code\":\"1\"}\n\n"),
            Some(SseEvent {
                event: "scan".into(),
                data: "{\"code\":\"1\"}".into()
            })
        );
        assert_eq!(
            parse_block("data: a\ndata: b\n\n"),
            Some(SseEvent {
                event: "message".into(),
                data: "a\nb".into()
            })
        );
        assert_eq!(parse_block(":\n\n"), None);
    }
}
