"""Config on disk: the stack files and what reads or writes them. Imports only `core`.

- `stack_file`: `Pulumi.<stack>.yaml`, read and written as the Pulumi CLI does, secrets included;
- `stack_yaml`: the bounded reader of that untrusted YAML; `stack_roundtrip`: edits keeping its style;
- `key_paths`: config key paths (`ns:key.a[0]`), secure leaves, and edits of the config tree at a path;
- `private_files`: the one owner-only rule for secret files and private directories;
- `secrets_provider`: Pulumi's passphrase secrets provider and the 0600 passphrase file;
- `key_cache`: derived stack keys kept between commands in the kernel keyring (memory, never disk);
- `tenant_config`: the tenant registry (`Pulumi.prod.<tenant>.yaml`): selection, validated specs, writes;
- `platform_stack`: `platform init` writes `Pulumi.prod.yaml`; `stack_writer`: a new stack file, read back first;
- `ownership`: one owner per hostname across the registry;
- `secret_entry`: operator secret entry and relay-key rotation into the stack files;
- `reissue`: a last good stack file under a newer config_version (the rollback that rolls forward);
- `secret_bulk`: a tenant's secrets as a set: list, unset, and import from a secret manager's export;
- `settings`: where the control plane keeps things on the VPS; `atomic_file`: crash-safe writes;
- `state_backend`: the Pulumi backend URL checked (`file://` on one VPS, `s3://` on R2 for several nodes).
"""
