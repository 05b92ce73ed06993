"""Encrypted, verifiable backups of the VPS state to S3-compatible storage (Cloudflare R2).

`repository` holds the create/list/verify/restore/prune logic; `crypto` the key derivation and
sealing; `snapshot` the file stream; `store` the bucket; `sources` what is backed up; `marker`
the local record of the last good backup that `doctor` reads; `custody` the rule that the
backup passphrase is not the state passphrase; `errors` the failures of backups.
"""
