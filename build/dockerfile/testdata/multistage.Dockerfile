# syntax=docker/dockerfile:1
# escape=\

ARG BASE=busybox
ARG VERSION

FROM --platform=$BUILDPLATFORM ${BASE}:latest AS Build
ENV A=1 B="two words" \
    C='single $quoted'
ENV LEGACY value with spaces
# a comment between instructions
RUN set -e; \
    # a comment inside a continuation
    echo building \
      > /out
RUN ["sh", "-c", "echo exec form"]
RUN --mount=type=cache,target=/cache --network=none echo cached
COPY --chown=1000:1000 --chmod=0644 a.txt b*.txt /dst/
ADD --link http://127.0.0.1/file.tar.gz /x/
LABEL maintainer="Berth Tester" version=1.0
EXPOSE 80/tcp 53/udp
WORKDIR /work
USER nobody:nogroup
VOLUME ["/data", "/logs"]
VOLUME /one /two
SHELL ["/bin/sh", "-ec"]
HEALTHCHECK --interval=5s --timeout=2s --retries=3 CMD wget -q -O- http://localhost/ || exit 1
STOPSIGNAL SIGTERM
ONBUILD RUN echo triggered
MAINTAINER Someone <someone@example.invalid>
CMD ["sh"]
ENTRYPOINT echo hello

from build
copy --from=build /out /out
