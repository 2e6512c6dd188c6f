"""TLS: expired certificates and failed handshakes."""

from __future__ import annotations

from vigil.agents.builtin.knowledge.pattern import FailurePattern

PATTERNS: tuple[FailurePattern, ...] = (
    FailurePattern(
        error_type="CertificateExpired",
        title="TLS certificate expired",
        phrases=(
            "validity check failed",
            "CERTIFICATE_EXPIRED",
            "CERT_HAS_EXPIRED",
            "expired certificate",
            "certificate has expired",
            "certificate expired",
            "CertificateExpiredException",
            "certificate is not yet valid",
        ),
        severity="critical",
        root_cause="A TLS certificate in the call path is past its validity period (or the clock is "
        "wrong), so every handshake with that peer fails.",
        remediation=(
            "Identify the endpoint from the samples and check its certificate dates "
            "(`openssl s_client -connect host:port | openssl x509 -noout -dates`).",
            "Renew or rotate the certificate (cert-manager: check the Certificate and CertificateRequest "
            "status) and reload the server or restart the pods that cache it.",
            "Verify the clocks (NTP) of the failing hosts if the certificate dates look right.",
            "Add an expiry alert (for example 21 days ahead) for every certificate in the path.",
        ),
        notify=True,
        confidence=0.95,
        specificity=0.98,
        explains=("TlsHandshakeFailure", "UpstreamTimeout", "ConnectionReset"),
    ),
    FailurePattern(
        error_type="TlsHandshakeFailure",
        title="TLS handshake failures",
        phrases=(
            "handshake failure",
            "handshake_failure",
            "SSLHandshakeException",
            "SSLError",
            "certificate verify failed",
            "signed by unknown authority",
            "unable to verify the first certificate",
            "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
            "PKIX path building failed",
            "self signed certificate",
            "self-signed certificate",
            "WRONG_VERSION_NUMBER",
            "tls: bad certificate",
            "does not look like a TLS handshake",
        ),
        signals=(r"certificate is valid for \S{1,200}, not",),
        severity="critical",
        root_cause="The TLS handshake fails: an untrusted or self-signed CA, a host name that does "
        "not match the certificate, a protocol mismatch (plain HTTP to a TLS port or the reverse), "
        "or a missing client certificate.",
        remediation=(
            "Reproduce from the client's network with `openssl s_client -connect host:port "
            "-servername host` and read the verify result.",
            "Check that the client trusts the issuing CA (CA bundle, Java truststore) and that the "
            "certificate's SANs include the host name used.",
            "Check the scheme and port (https vs http) and mTLS settings of the mesh or proxy.",
        ),
        notify=True,
        confidence=0.8,
        specificity=0.88,
    ),
)
