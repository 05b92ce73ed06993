"""The real program without the Pulumi CLI or credentials: for `plan`, the policy pack and tests.

- `session`: run the program under the mocks and collect what it registers (no global state left);
- `cloudflare_mock`: the provider-faithful stand-in for Cloudflare;
- `plan`: the reviewable plan document, secrets masked;
- `policy_pack`: the CrossGuard pack and each policy's config;
- `analyzer`: resources handed to the pack's rules as the engine's analyzer hands them;
- `policy_runner`: the pack over tenant stacks, and the account-wide rules over all of them;
- `errors`: the offline path's failures (a provider's refusal).
"""
