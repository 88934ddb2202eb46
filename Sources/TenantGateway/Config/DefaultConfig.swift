extension GatewayConfig {
    /// The commented configuration written on first start when the user has none.
    ///
    /// It declares no provider, so the gateway starts anywhere; the comments show every key.
    package static let defaultFileText = """
        # rosettad configuration (user mode). Edit, then restart `rosettad serve --user`.
        # ${VAR} is replaced by the environment variable VAR when the file is loaded
        # (a missing variable stops the daemon with the file and line); write $${ for a literal ${.
        #
        # providers: upstream endpoints, by a name of your choice.
        #   type: openai_chat   OpenAI Chat Completions; base_url includes /v1, the gateway appends /chat/completions
        #   type: anthropic     Anthropic Messages; base_url is the host root, the gateway appends /v1/messages
        #   type: openai_responses  OpenAI Responses; base_url includes /v1, the gateway appends /responses
        #   type: google        Google GenAI; base_url includes /v1beta, the gateway appends /models/{m}:generateContent
        #   type: alcf          ALCF Inference Endpoints with a Globus grant (`rosetta login alcf`; see docs/alcf.md)
        #   type: argo          Argo, optionally through a private SSH tunnel (`rosetta tunnel login`; see docs/argo.md)
        #   api_key:            sent upstream as "Authorization: Bearer" (openai_*), "x-api-key" (anthropic)
        #                       or "x-goog-api-key" (google)
        #   headers:            extra headers sent with every upstream request
        #   ca_file:            a CA bundle to verify the upstream's certificate (default: the system's)
        providers: {}
        #  openai:
        #    type: openai_chat
        #    base_url: https://api.openai.com/v1
        #    api_key: ${OPENAI_API_KEY}
        #  anthropic:
        #    type: anthropic
        #    base_url: https://api.anthropic.com
        #    api_key: ${ANTHROPIC_API_KEY}
        #  local:
        #    type: openai_chat
        #    base_url: http://127.0.0.1:8000/v1
        #    headers: {X-Extra: value}

        # models: the names clients ask for, and where each goes.
        #   provider:        a name from providers
        #   upstream_model:  the name the upstream knows (default: the alias itself)
        #   capabilities:    [text, vision, tools, reasoning] (omit to allow everything)
        #   max_tokens:      filled in for Anthropic-format upstreams when the client sends none (default 8192)
        models: {}
        #  gpt-4o:
        #    provider: openai
        #    upstream_model: gpt-4o
        #    capabilities: [text, vision, tools]
        #  claude-sonnet-4-5:
        #    provider: anthropic
        #    upstream_model: claude-sonnet-4-5
        #    capabilities: [text, vision, tools, reasoning]
        #    max_tokens: 16384

        # limits on client requests (defaults shown)
        # limits:
        #   max_body_bytes: 33554432
        #   max_header_bytes: 65536
        #   request_timeout_seconds: 30
        #   idle_timeout_seconds: 60
        #   max_concurrent_upstream: 16   model calls (streams for their whole length) in flight at once
        #   max_queued: 64                calls waiting for one of those slots; beyond that: 429 with Retry-After

        # upstream timeouts (defaults shown)
        # upstream:
        #   connect_timeout_seconds: 10
        #   idle_timeout_seconds: 300

        # how long SIGTERM waits for in-flight requests and streams (default 30)
        # shutdown_grace_seconds: 30

        # system mode only: the lab user name each login name acts as upstream (Argo's `user`);
        # an account not listed uses its login name, and a provider's own `user:` is ignored there
        # identities:
        #   alice: alab123

        """
}
