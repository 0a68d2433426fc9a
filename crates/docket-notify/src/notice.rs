//! What is said about a finished document, as email text and webhook data.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How a document's processing ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoticeStatus {
    /// All stages succeeded.
    Completed,
    /// A stage failed for good.
    Failed,
}

impl NoticeStatus {
    /// `"completed"` or `"failed"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }
}

/// The facts about one finished document that notifications report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentNotice {
    /// Document id.
    pub id: String,
    /// Original file name.
    pub filename: String,
    /// Outcome.
    pub status: NoticeStatus,
    /// Error message, for failed documents.
    pub error: Option<String>,
    /// Number of chunks produced.
    pub chunk_count: u64,
    /// Number of tokens across those chunks.
    pub token_count: u64,
    /// The stage that failed (`parse`, `chunk`, `embed`, ...), for failed
    /// documents.
    pub stage: Option<String>,
}

/// Longest file name shown in a subject line, in characters.
const SUBJECT_FILENAME_CHARS: usize = 100;

/// Control characters (newlines included) become spaces, so that a file
/// name cannot break a subject line or fake extra lines in a body.
fn single_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

impl DocumentNotice {
    /// The webhook event type: `document.completed` or `document.failed`.
    pub fn event_type(&self) -> &'static str {
        match self.status {
            NoticeStatus::Completed => "document.completed",
            NoticeStatus::Failed => "document.failed",
        }
    }

    /// The webhook `data` object. Every key is always present; `error` and
    /// `stage` are `null` when not set.
    pub fn webhook_data(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "filename": self.filename,
            "status": self.status.as_str(),
            "error": self.error,
            "chunk_count": self.chunk_count,
            "token_count": self.token_count,
            "stage": self.stage,
        })
    }

    /// The whole webhook payload: [`event`](crate::event) of
    /// [`event_type`](Self::event_type) and [`webhook_data`](Self::webhook_data).
    pub fn webhook_event(&self, at: DateTime<Utc>) -> serde_json::Value {
        crate::webhook::event(self.event_type(), self.webhook_data(), at)
    }

    /// The email `(subject, plain-text body)`.
    pub fn email(&self) -> (String, String) {
        let mut name = single_line(&self.filename);
        if name.chars().count() > SUBJECT_FILENAME_CHARS {
            name = name.chars().take(SUBJECT_FILENAME_CHARS - 1).collect();
            name.push('…');
        }
        let subject = match self.status {
            NoticeStatus::Completed => format!("[docket] Document processed: {name}"),
            NoticeStatus::Failed => format!("[docket] Document failed: {name}"),
        };

        let filename = single_line(&self.filename);
        let id = single_line(&self.id);
        let mut body = String::new();
        match self.status {
            NoticeStatus::Completed => {
                let _ = writeln!(body, "The document \"{filename}\" was processed.");
            }
            NoticeStatus::Failed => {
                let _ = writeln!(body, "The document \"{filename}\" could not be processed.");
            }
        }
        body.push('\n');
        let _ = writeln!(body, "Document id: {id}");
        let _ = writeln!(body, "Status:      {}", self.status.as_str());
        if let Some(stage) = &self.stage {
            let _ = writeln!(body, "Stage:       {}", single_line(stage));
        }
        let _ = writeln!(body, "Chunks:      {}", self.chunk_count);
        let _ = writeln!(body, "Tokens:      {}", self.token_count);
        if let Some(error) = &self.error {
            // The error may span lines; keep them, indented under the label.
            let _ = writeln!(body, "\nError:");
            for line in error.lines() {
                let _ = writeln!(body, "    {line}");
            }
        }
        body.push_str("\n-- \ndocket\n");
        (subject, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed() -> DocumentNotice {
        DocumentNotice {
            id: "doc_1".into(),
            filename: "report\nBcc: evil@example.com.pdf".into(),
            status: NoticeStatus::Failed,
            error: Some("embedding service returned 503\nretries exhausted".into()),
            chunk_count: 12,
            token_count: 3400,
            stage: Some("embed".into()),
        }
    }

    #[test]
    fn failed_email() {
        let (subject, body) = failed().email();
        assert_eq!(
            subject,
            "[docket] Document failed: report Bcc: evil@example.com.pdf"
        );
        assert!(body.contains("could not be processed"), "{body}");
        assert!(body.contains("Stage:       embed"), "{body}");
        assert!(body.contains("    embedding service returned 503\n    retries exhausted"));
        assert!(!body.contains("\nBcc:"), "{body}");
    }

    #[test]
    fn completed_email_and_data() {
        let n = DocumentNotice {
            id: "doc_2".into(),
            filename: "x".repeat(300),
            status: NoticeStatus::Completed,
            error: None,
            chunk_count: 3,
            token_count: 900,
            stage: None,
        };
        let (subject, body) = n.email();
        assert!(subject.chars().count() < 140, "{subject}");
        assert!(subject.ends_with('…'));
        assert!(body.contains("Chunks:      3") && body.contains("Tokens:      900"));
        assert!(!body.contains("Stage") && !body.contains("Error"));
        assert_eq!(n.event_type(), "document.completed");
        assert_eq!(
            n.webhook_data(),
            serde_json::json!({
                "id": "doc_2", "filename": "x".repeat(300), "status": "completed",
                "error": null, "chunk_count": 3, "token_count": 900, "stage": null,
            })
        );
        let f = failed();
        assert_eq!(f.event_type(), "document.failed");
        assert_eq!(f.webhook_data()["stage"], "embed");
        let ev = f.webhook_event(Utc::now());
        assert_eq!(ev["type"], "document.failed");
        assert_eq!(ev["data"]["id"], "doc_1");
    }
}
