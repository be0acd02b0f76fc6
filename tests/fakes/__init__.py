"""Local stand-ins for the remote APIs the product writes to, and a file-backed remediation store.

- `fakes.github_server`: `FakeGitHub` (GitHub REST for issues, labels, git data, pulls), fixture `github_fake`
- `fakes.jules_server`: `FakeJules` (Jules v1alpha with scripted sessions), fixture `jules_fake`
- `fakes.remediation_store`: `FileRemediationStore` (a real RemediationStore), fixture `remediation_store`

Tests import them as `fakes.*` (pytest puts tests/ on sys.path).
"""
