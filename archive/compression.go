package archive

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
	"github.com/ulikunitz/xz"

	"berth/errdefs"
)

// Compression is the codec of a layer blob.
type Compression int

// The codecs berth recognises. Gzip and Zstd are what registries carry
// (OCI +gzip, +zstd); Xz and Bzip2 appear in old docker-archive and `ADD`
// sources and are readable, Bzip2 is never written.
const (
	Uncompressed Compression = iota
	Gzip
	Zstd
	Xz
	Bzip2
)

func (c Compression) String() string {
	switch c {
	case Uncompressed:
		return "uncompressed"
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	case Xz:
		return "xz"
	case Bzip2:
		return "bzip2"
	}
	return fmt.Sprintf("compression(%d)", int(c))
}

var magics = []struct {
	c     Compression
	magic []byte
}{
	{Gzip, []byte{0x1f, 0x8b, 0x08}},
	{Zstd, []byte{0x28, 0xb5, 0x2f, 0xfd}},
	{Xz, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}},
	{Bzip2, []byte{'B', 'Z', 'h'}},
}

// magicLen is the longest magic; DecompressStream peeks this many bytes.
const magicLen = 6

// DetectCompression names the codec whose magic number starts header.
func DetectCompression(header []byte) Compression {
	for _, m := range magics {
		if bytes.HasPrefix(header, m.magic) {
			return m.c
		}
	}
	return Uncompressed
}

// DecompressStream sniffs the codec of r and returns a reader of the plain
// stream. Truncated or corrupt input surfaces as an error from Read, never
// as a clean io.EOF, so callers digesting the plain stream cannot be fooled
// by a short blob.
func DecompressStream(r io.Reader) (io.ReadCloser, Compression, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(magicLen)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, Uncompressed, fmt.Errorf("sniff compression: %w", err)
	}
	c := DetectCompression(head)
	switch c {
	case Gzip:
		zr, err := pgzip.NewReader(br)
		if err != nil {
			return nil, c, fmt.Errorf("gzip stream: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		return &strictReader{r: zr, close: zr.Close, codec: c}, c, nil
	case Zstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, c, fmt.Errorf("zstd stream: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		return &strictReader{r: zr, close: func() error { zr.Close(); return nil }, codec: c}, c, nil
	case Xz:
		xr, err := xz.NewReader(br)
		if err != nil {
			return nil, c, fmt.Errorf("xz stream: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		return &strictReader{r: xr, close: nopClose, codec: c}, c, nil
	case Bzip2:
		return &strictReader{r: bzip2.NewReader(br), close: nopClose, codec: c}, c, nil
	}
	return io.NopCloser(br), Uncompressed, nil
}

func nopClose() error { return nil }

// strictReader tags every decoder error except a clean end of stream as
// invalid input. Decoders that see their input end early report
// io.ErrUnexpectedEOF; a few report io.EOF mid-frame, which the codecs below
// avoid by always validating their trailers.
type strictReader struct {
	r     io.Reader
	close func() error
	codec Compression
}

func (s *strictReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		return n, fmt.Errorf("%s stream: %w: %w", s.codec, err, errdefs.ErrInvalidArgument)
	}
	return n, err
}

func (s *strictReader) Close() error { return s.close() }

// CompressStream returns a writer that compresses into w with c. Closing it
// flushes the codec's trailer but does not close w.
func CompressStream(w io.Writer, c Compression) (io.WriteCloser, error) {
	switch c {
	case Uncompressed:
		return nopWriteCloser{w}, nil
	case Gzip:
		return pgzip.NewWriterLevel(w, pgzip.DefaultCompression)
	case Zstd:
		zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault))
		if err != nil {
			return nil, fmt.Errorf("zstd writer: %w", err)
		}
		return zw, nil
	case Xz:
		xw, err := xz.NewWriter(w)
		if err != nil {
			return nil, fmt.Errorf("xz writer: %w", err)
		}
		return xw, nil
	case Bzip2:
		return nil, fmt.Errorf("compression %s: writing is unsupported: %w", c, errdefs.ErrInvalidArgument)
	}
	return nil, fmt.Errorf("compression %s: %w", c, errdefs.ErrInvalidArgument)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
