//! A layer blob's compression, told by its first bytes, and the decoders.
//!
//! The media type says what a layer should be; the bytes say what it is. kekkai goes by the
//! bytes (docker archives carry no media type at all) and verifies the result by digest anyway.
//! gzip is read with `MultiGzDecoder`, since pigz and some builders write several members; zstd
//! with ruzstd's frame decoder in a loop over frames and skippable frames (zstd:chunked layers
//! have both), with ruzstd's default window limit bounding its memory.

use std::io::{BufRead, Read};

use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

/// How a blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip (`1f 8b`).
    Gzip,
    /// zstd (`28 b5 2f fd`, or a skippable frame `5? 2a 4d 18`).
    Zstd,
}

impl Compression {
    /// Tells the compression from a blob's first bytes.
    pub fn sniff(head: &[u8]) -> Compression {
        match head {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            [m, 0x2a, 0x4d, 0x18, ..] if m & 0xf0 == 0x50 => Compression::Zstd,
            _ => Compression::None,
        }
    }

    /// Its name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// A decoder of `compression` over `r`.
pub fn decoder<'a, R: BufRead + 'a>(compression: Compression, r: R) -> Box<dyn Read + 'a> {
    match compression {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(ZstdFrames::new(r)),
    }
}

/// Every zstd frame of a stream, one after the other; skippable frames are skipped.
pub struct ZstdFrames<R> {
    source: R,
    frame: FrameDecoder,
    in_frame: bool,
}

impl<R: BufRead> ZstdFrames<R> {
    /// A decoder over `source`.
    pub fn new(source: R) -> ZstdFrames<R> {
        ZstdFrames {
            source,
            frame: FrameDecoder::new(),
            in_frame: false,
        }
    }
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.in_frame {
                if self.source.fill_buf()?.is_empty() {
                    return Ok(0);
                }
                match self.frame.init(&mut self.source) {
                    Ok(()) => self.in_frame = true,
                    Err(FrameDecoderError::ReadFrameHeaderError(
                        ReadFrameHeaderError::SkipFrame { length, .. },
                    )) => {
                        let skip = u64::from(length);
                        let n = std::io::copy(
                            &mut (&mut self.source).take(skip),
                            &mut std::io::sink(),
                        )?;
                        if n != skip {
                            return Err(std::io::Error::new(
                                std::io::ErrorKind::UnexpectedEof,
                                "zstd: a skippable frame ends early",
                            ));
                        }
                    }
                    Err(e) => return Err(std::io::Error::other(format!("zstd: {e}"))),
                }
                continue;
            }
            while self.frame.can_collect() == 0 && !self.frame.is_finished() {
                self.frame
                    .decode_blocks(&mut self.source, BlockDecodingStrategy::UptoBlocks(1))
                    .map_err(|e| std::io::Error::other(format!("zstd: {e}")))?;
            }
            let n = self.frame.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            if self.frame.is_finished() && self.frame.can_collect() == 0 {
                self.in_frame = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case(&[0x1f, 0x8b, 8], Compression::Gzip)]
    #[case(&[0x28, 0xb5, 0x2f, 0xfd, 0], Compression::Zstd)]
    #[case(&[0x50, 0x2a, 0x4d, 0x18], Compression::Zstd)]
    #[case(b"etc/passwd\0", Compression::None)]
    #[case(&[], Compression::None)]
    fn sniffs(#[case] head: &[u8], #[case] want: Compression) {
        assert_eq!(Compression::sniff(head), want);
    }

    fn read_all(c: Compression, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        decoder(c, std::io::BufReader::new(bytes)).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn gzip_reads_every_member() {
        use std::io::Write;
        let mut all = Vec::new();
        for part in [&b"hello "[..], b"world"] {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(part).unwrap();
            all.extend(e.finish().unwrap());
        }
        assert_eq!(read_all(Compression::Gzip, &all).unwrap(), b"hello world");
    }

    #[test]
    fn zstd_reads_every_frame_and_skips_skippable_ones() {
        let frame = |data: &[u8]| {
            ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
        };
        let mut all = vec![0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4];
        all.extend(frame(b"hello "));
        all.extend(frame(b"world"));
        assert_eq!(read_all(Compression::Zstd, &all).unwrap(), b"hello world");
        // Garbage after the frames is an error, not the end.
        all.extend(b"garbage");
        assert!(read_all(Compression::Zstd, &all).is_err());
    }
}
