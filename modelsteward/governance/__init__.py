"""Governance: the audit trail's verification and export (identities, compliance and reports follow)."""
