//! Streaming a large table to Parquet batch by batch, on a writer thread, with the encoding of
//! each column chosen by the caller.
//!
//! Owns: the writer of the data stages' large intermediate tables (one row group per batch, the
//! statistics polars writes), and `with_parquet_thread`, which overlaps writing one batch with
//! making the next. Deliberately does not own: small output tables (`table`, through polars' own
//! writer) or what any column means (the kinds say which columns are plain or delta-encoded).
//!
//! Why not polars' `BatchedWriter`: it has one encoding per type, so a row-number column (10M
//! distinct integers) is written plain and left to Snappy (80 MB -> 40 MB on 10M records), where
//! Parquet's delta encoding makes it almost nothing; and every text column pays for a cardinality
//! estimate even when the caller knows its values are distinct. On the 10M-record benchmark the
//! two intermediate tables shrink from 559 to 483 MB and the run uses about 0.6 s less CPU.

use std::io::Write;

use polars::prelude::*;
use polars_parquet::write::{
    array_to_columns, compress, fallible_streaming_iterator, get_dtype_encoding, to_parquet_schema,
    CompressedPage, CompressionOptions, DynIter, DynStreamingIterator, Encoding, FileWriter,
    ParquetType, StatisticsOptions, Version, WriteOptions,
};

use repro_kind::Diagnostic;

/// How a streamed table is encoded.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamConfig<'a> {
    /// Text columns whose values are mostly distinct: written plain, never as a dictionary.
    pub plain: &'a [&'a str],
    /// Integer columns that mostly count up (row numbers): delta-encoded.
    pub delta: &'a [&'a str],
}

/// A Parquet file being written one row group per batch.
pub struct StreamWriter<W: Write> {
    writer: FileWriter<W>,
    fields: Vec<ParquetType>,
    encodings: Vec<Vec<Encoding>>,
    options: WriteOptions,
}

/// Starts a Parquet file of `schema` on `out`.
pub fn stream_writer<W: Write>(
    out: W,
    schema: &Schema,
    config: StreamConfig<'_>,
) -> PolarsResult<StreamWriter<W>> {
    let arrow = schema.to_arrow(CompatLevel::newest());
    let fields = to_parquet_schema(&arrow)?.fields().to_vec();
    let encodings = arrow
        .iter_values()
        .map(|f| {
            if config.plain.contains(&f.name.as_str()) {
                vec![Encoding::Plain]
            } else if config.delta.contains(&f.name.as_str()) {
                vec![Encoding::DeltaBinaryPacked]
            } else {
                get_dtype_encoding(&f.dtype)
            }
        })
        .collect();
    // polars' `ParquetWriter` settings (statistics, version 1 pages, its page size) with Snappy:
    // cheaper than zstd, and every Parquet reader knows it (LZ4_RAW saved about 0.4 s of CPU on
    // 10M records, too little for files that old readers cannot open).
    let options = WriteOptions {
        statistics: StatisticsOptions::default(),
        compression: CompressionOptions::Snappy,
        version: Version::V1,
        data_page_size: None,
    };
    Ok(StreamWriter {
        writer: FileWriter::try_new(out, arrow, options)?,
        fields,
        encodings,
        options,
    })
}

impl<W: Write> StreamWriter<W> {
    /// Appends `df` (columns in the schema's order) as one row group per chunk.
    pub fn write(&mut self, df: &DataFrame) -> PolarsResult<()> {
        for batch in df.iter_chunks(CompatLevel::newest(), false) {
            let rows = batch.len();
            if rows == 0 {
                continue;
            }
            let options = self.options;
            let columns: Vec<Vec<Vec<CompressedPage>>> = batch
                .columns()
                .iter()
                .zip(&self.fields)
                .zip(&self.encodings)
                .map(|((array, field), encoding)| {
                    array_to_columns(array, field.clone(), options, encoding)?
                        .into_iter()
                        .map(|pages| {
                            pages
                                .map(|page| Ok(compress(page?, vec![], options.compression)?))
                                .collect::<PolarsResult<Vec<CompressedPage>>>()
                        })
                        .collect()
                })
                .collect::<PolarsResult<_>>()?;
            let group = DynIter::new(columns.iter().flatten().map(|pages| {
                Ok(DynStreamingIterator::new(
                    fallible_streaming_iterator::convert(pages.iter().map(PolarsResult::Ok)),
                ))
            }));
            self.writer.write(rows as u64, group)?;
        }
        Ok(())
    }

    /// Writes the footer (with the Arrow schema, as polars does) and flushes `out`, so that a
    /// write error is reported rather than lost when a buffer is dropped; the file's size.
    pub fn finish(mut self) -> PolarsResult<u64> {
        let size = self.writer.end(None)?;
        self.writer.into_inner().flush()?;
        Ok(size)
    }
}

/// Writes frames with `writer` on a second thread while `produce` makes them and sends them
/// (in order) through the channel it is given, so that encoding and compressing one batch
/// overlaps with making the next. A write error wins over what `produce` returned: the producer
/// sees a failed writer only as a closed channel. `cannot` turns a write error into the message.
pub fn with_parquet_thread<W, T>(
    writer: &mut StreamWriter<W>,
    cannot: impl Fn(&dyn std::fmt::Display) -> Diagnostic,
    produce: impl FnOnce(std::sync::mpsc::SyncSender<DataFrame>) -> Result<T, Diagnostic>,
) -> Result<T, Diagnostic>
where
    W: Write + Send,
{
    std::thread::scope(|scope| {
        let (frames, rx) = std::sync::mpsc::sync_channel::<DataFrame>(1);
        let thread = scope.spawn(move || -> PolarsResult<()> {
            for frame in rx {
                writer.write(&frame)?;
            }
            Ok(())
        });
        // `produce` owns the sender: the channel closes, and the writer's loop ends, when it
        // returns.
        let made = produce(frames);
        let written = match thread.join() {
            Ok(result) => result.map_err(|e| cannot(&e)),
            Err(_) => Err(cannot(&"the Parquet writer stopped unexpectedly")),
        };
        written.and(made)
    })
}

/// The error a producer gives when `with_parquet_thread`'s channel is closed (the writer failed;
/// its own error is the one reported).
pub fn writer_gone() -> Diagnostic {
    Diagnostic::new("the Parquet writer stopped")
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars_parquet::write::ThriftFileMetadata;

    fn frame(n: usize, offset: usize) -> DataFrame {
        let ids: Vec<String> = (offset..offset + n).map(|i| format!("CN{i:012}")).collect();
        let kinds: Vec<Option<&str>> = (0..n)
            .map(|i| [Some("a"), Some("b"), None][i % 3])
            .collect();
        let rows: Vec<u64> = (offset..offset + n).map(|i| i as u64 * 3 + 1).collect();
        let apps: Vec<Option<i64>> = (0..n)
            .map(|i| (i % 5 != 4).then_some((offset + i) as i64 / 2))
            .collect();
        df!("id" => ids, "kind" => kinds, "row" => rows, "app" => apps).unwrap()
    }

    /// The Parquet encoding numbers of column `col` in row group 0 (PLAIN 0, RLE 3,
    /// DELTA_BINARY_PACKED 5, RLE_DICTIONARY 8).
    fn encodings(meta: &ThriftFileMetadata, col: usize) -> Vec<i32> {
        let chunk = &meta.row_groups[0].columns[col];
        let data = chunk.meta_data.as_ref().unwrap();
        data.encodings.iter().map(|e| e.0).collect()
    }

    /// What polars reads back is what was written, batch after batch (empty batches add no row
    /// group), and each column has the encoding it was given.
    #[test]
    fn round_trips_through_polars_with_the_chosen_encodings() {
        let parts = [
            frame(1000, 0),
            frame(1, 1000),
            frame(0, 1001),
            frame(2500, 1001),
        ];
        let mut bytes = Vec::new();
        let config = StreamConfig {
            plain: &["id"],
            delta: &["row", "app"],
        };
        let mut w = stream_writer(&mut bytes, parts[0].schema(), config).unwrap();
        for p in &parts {
            w.write(p).unwrap();
        }
        w.writer.end(None).unwrap();
        let (_, meta) = w.writer.into_inner_and_metadata();
        let back = ParquetReader::new(std::io::Cursor::new(bytes))
            .finish()
            .unwrap();
        let mut all = parts[0].clone();
        for p in &parts[1..] {
            all.vstack_mut(p).unwrap();
        }
        assert!(back.equals_missing(&all), "{back:?}\n{all:?}");
        assert_eq!(meta.row_groups.len(), 3);
        let (plain, rle, delta, dictionary) = (0, 3, 5, 8);
        assert_eq!(encodings(&meta, 0), [plain, rle]);
        assert!(encodings(&meta, 1).contains(&dictionary));
        assert!(encodings(&meta, 2).contains(&delta));
        assert!(!encodings(&meta, 2).contains(&plain));
        assert!(encodings(&meta, 3).contains(&delta));
    }
}
