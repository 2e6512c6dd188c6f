"""The remediation workflow: runbooks, approvals, actions, verification and the audit log."""
