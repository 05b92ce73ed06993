"""The real program without the Pulumi CLI or credentials: for `plan`, the policy pack and tests.

- `session`: run the program under the mocks and collect what it registers;
- `cloudflare_mock`: the provider-faithful stand-in for Cloudflare;
- `policy_runner`: the CrossGuard pack in-process, as `pulumi preview --policy-pack` runs it.
"""
