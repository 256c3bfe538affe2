"""Certificate checks: httpx's own for https; for plain http, a context that trusts nothing."""

from __future__ import annotations

import ssl

from rovo_reconcile.targets import _certificate_checks


def test_https_targets_keep_httpx_certificate_checks() -> None:
    assert _certificate_checks("https://api.atlassian.com") is True


def test_an_http_target_gets_a_tls_context_that_could_verify_nothing() -> None:
    """Never used (requests go to the http URL, redirects are not followed); were it used, it
    would refuse every certificate, not accept one unchecked."""
    context = _certificate_checks("http://127.0.0.1:8080")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.cert_store_stats() == {"x509": 0, "crl": 0, "x509_ca": 0}
    assert context.get_ca_certs() == []
