# Build: a release binary (rustls only, bundled SQLite; no libpq, no OpenSSL).
FROM rust:1.95-slim-bookworm AS build
# make: jemalloc, the allocator, is built from C with it.
RUN apt-get update && apt-get install -y --no-install-recommends pkg-config libudev-dev make && rm -rf /var/lib/apt/lists/*
WORKDIR /src

# The dependencies first, in their own layer: it is rebuilt only when the manifests or the lock
# file change, not on every change to Hayloft's own code. Empty stand-ins for every target the
# manifests name let cargo build the dependency graph alone.
COPY Cargo.toml Cargo.lock ./
COPY actors/Cargo.toml actors/
RUN mkdir -p src actors/src benches tests/it \
    && echo 'fn main() {}' > src/main.rs && touch src/lib.rs actors/src/lib.rs \
    && for bench in $(sed -n '/^\[\[bench\]\]/{n;s/^name = "\(.*\)"/\1/p}' Cargo.toml); do echo 'fn main() {}' > "benches/$bench.rs"; done \
    && cargo build --profile dist --locked --features streamdeck-usb \
    && rm -rf src actors/src benches tests

# Then Hayloft itself. The image can drive a USB Stream Deck too (pass the device through),
# hence libudev. The dist profile (Cargo.toml) strips symbols and optimises across crates.
COPY . .
# There is no .git in the build context: `--build-arg HAYLOFT_COMMIT=$(git rev-parse --short=12 HEAD)`
# tells `hayloft --version` and /metrics which commit this is.
ARG HAYLOFT_COMMIT=""
# The stand-ins' build outputs are newer than nothing cargo can see: make sure ours win.
RUN touch src/main.rs src/lib.rs actors/src/lib.rs \
    && cargo build --profile dist --locked --features streamdeck-usb \
    && cp target/dist/hayloft /usr/local/bin/hayloft

# Run: a small Debian with just the binary.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libudev1 ca-certificates && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/hayloft --create-home hayloft
COPY --from=build /usr/local/bin/hayloft /usr/local/bin/hayloft
USER hayloft
WORKDIR /var/lib/hayloft
# SSH: the host key is created here on first start; put `authorized_keys` here too (README,
# "Production").
ENV HAYLOFT_ADDR=0.0.0.0:8080 \
    HAYLOFT_SSH_ADDR=0.0.0.0:2222 \
    HAYLOFT_LOG_FORMAT=json
VOLUME /var/lib/hayloft
EXPOSE 8080 2222
HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["hayloft", "healthcheck"]
ENTRYPOINT ["hayloft"]
CMD ["serve"]
