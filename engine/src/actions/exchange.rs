//! One HTTP/1.1 request over an already connected stream (the Docker engine's unix socket).
