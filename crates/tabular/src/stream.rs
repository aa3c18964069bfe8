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
//! Other text columns get the dictionary polars' writer would make (same pages, byte for byte),
//! built here with one hash map instead of its estimate and general builder.

use std::io::Write;

use polars::prelude::*;
use polars_arrow::array::{Array, DictionaryArray, PrimitiveArray, Utf8ViewArray};
use polars_arrow::bitmap::Bitmap;
use polars_arrow::datatypes::{ArrowDataType, IntegerType};
use polars_parquet::write::{
    array_to_columns, compress, fallible_streaming_iterator, get_dtype_encoding, to_parquet_schema,
    CompressedPage, CompressionOptions, DynIter, DynStreamingIterator, Encoding, FileWriter,
    ParquetType, StatisticsOptions, Version, WriteOptions,
};

use repro_kind::Diagnostic;
use rustc_hash::FxHashMap;

/// How a streamed table is encoded.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamConfig<'a> {
    /// Text columns whose values are mostly distinct: written plain, never as a dictionary.
    pub plain: &'a [&'a str],
    /// Integer columns that mostly count up (row numbers): delta-encoded.
    pub delta: &'a [&'a str],
    /// Text columns with a few values known in advance, passed as codes (see [`Coded`]).
    pub coded: &'a [Coded<'a>],
}

/// A text column whose values are `categories`: the schema given to [`stream_writer`] types it
/// `String` (what the file holds), and each frame passes it as a `UInt32` column of indexes into
/// `categories` (null for a missing value). It is written as a Parquet dictionary of the
/// categories the batch uses, in the order of `categories`, which is what polars' writer would
/// write for the same texts except for the dictionary's order, without hashing every value to
/// find its dictionary entry (on the 10M applicants of the index benchmark, two such columns
/// cost about 0.5 s of CPU as text).
#[derive(Debug, Clone, Copy)]
pub struct Coded<'a> {
    pub name: &'a str,
    pub categories: &'a [&'a str],
}

/// A Parquet file being written one row group per batch.
pub struct StreamWriter<W: Write> {
    writer: FileWriter<W>,
    fields: Vec<ParquetType>,
    encodings: Vec<Vec<Encoding>>,
    /// The categories of each coded column (`None` for the others), in the schema's order.
    categories: Vec<Option<Vec<PlSmallStr>>>,
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
            if coded_in(&config, &f.name).is_some() {
                vec![Encoding::RleDictionary]
            } else if config.plain.contains(&f.name.as_str()) {
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
    let categories = arrow
        .iter_values()
        .map(|f| {
            coded_in(&config, &f.name).map(|c| c.categories.iter().map(|&s| s.into()).collect())
        })
        .collect();
    Ok(StreamWriter {
        writer: FileWriter::try_new(out, arrow, options)?,
        fields,
        encodings,
        categories,
        options,
    })
}

fn coded_in<'a>(config: &StreamConfig<'a>, name: &str) -> Option<&'a Coded<'a>> {
    config.coded.iter().find(|c| c.name == name)
}

/// A coded column's codes (`UInt32`) as a dictionary array of the categories they use, in the
/// order of `categories` (statistics are taken from the dictionary, so it holds no unused value).
fn dictionary_of(codes: &dyn Array, categories: &[PlSmallStr]) -> PolarsResult<Box<dyn Array>> {
    let Some(codes) = codes.as_any().downcast_ref::<PrimitiveArray<u32>>() else {
        polars_bail!(ComputeError: "a coded column must be passed as UInt32 codes");
    };
    let valid = |i: usize| codes.validity().is_none_or(|v| v.get_bit(i));
    // The dictionary index of each category, `u32::MAX` while unused.
    let mut index = vec![u32::MAX; categories.len()];
    for (i, &c) in codes.values().iter().enumerate() {
        if !valid(i) {
            continue;
        }
        match index.get_mut(c as usize) {
            Some(slot) => *slot = 0,
            None => polars_bail!(ComputeError: "code {c} of a coded column has no category"),
        }
    }
    let mut values = Vec::new();
    for (slot, category) in index.iter_mut().zip(categories) {
        if *slot != u32::MAX {
            *slot = values.len() as u32;
            values.push(category.as_str());
        }
    }
    // A null's code may be anything; its key is never read.
    let keys: Vec<u32> = codes
        .values()
        .iter()
        .map(|&c| {
            index
                .get(c as usize)
                .copied()
                .filter(|&k| k != u32::MAX)
                .unwrap_or(0)
        })
        .collect();
    text_dictionary_array(keys, codes.validity(), &values)
}

/// A dictionary array of texts: `keys` index `values`; a null's key is never read.
fn text_dictionary_array(
    keys: Vec<u32>,
    validity: Option<&Bitmap>,
    values: &[&str],
) -> PolarsResult<Box<dyn Array>> {
    let keys = PrimitiveArray::new(ArrowDataType::UInt32, keys.into(), validity.cloned());
    let values = Utf8ViewArray::from_slice_values(values);
    let dtype = ArrowDataType::Dictionary(
        IntegerType::UInt32,
        Box::new(ArrowDataType::Utf8View),
        false,
    );
    Ok(DictionaryArray::try_new(dtype, keys, values.boxed())?.boxed())
}

/// What [`text_dictionary`] made of a column.
enum Dictionary {
    Built(Box<dyn Array>),
    /// More than three quarters of the values are distinct: written plain.
    NotWorth,
    /// Not a text column: polars' writer decides.
    NotText,
}

/// A text column as a dictionary of its distinct values in the order they first appear, which is
/// what polars' writer makes of it, found with one Fx hash map instead of polars' cardinality
/// estimate followed by its general dictionary builder (together about 9% of `ingest`'s CPU on
/// 10M records). Like polars, a column is written plain when more than three quarters of its
/// values are distinct; polars decides on an estimate of that count, this on the count.
fn text_dictionary(array: &dyn Array) -> Dictionary {
    let Some(array) = array.as_any().downcast_ref::<Utf8ViewArray>() else {
        return Dictionary::NotText;
    };
    let n = array.len();
    // polars' rule (polars-parquet's `encode_as_dictionary_optional`): plain above 3/4 distinct.
    let worth = |distinct: usize| n <= 128 || distinct * 4 <= n * 3;
    let mut index: FxHashMap<&str, u32> = FxHashMap::default();
    let mut values: Vec<&str> = Vec::new();
    let mut keys: Vec<u32> = Vec::with_capacity(n);
    for v in array.iter() {
        // A null's key is never read; 0 as polars' builder leaves it.
        let Some(v) = v else {
            keys.push(0);
            continue;
        };
        let next = values.len() as u32;
        let key = *index.entry(v).or_insert_with(|| {
            values.push(v);
            next
        });
        keys.push(key);
        if !worth(values.len()) {
            return Dictionary::NotWorth;
        }
    }
    match text_dictionary_array(keys, array.validity(), &values) {
        Ok(d) => Dictionary::Built(d),
        // Cannot happen (every key indexes `values`); polars' writer then decides as before.
        Err(_) => Dictionary::NotText,
    }
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
                .zip(&self.categories)
                .map(|(((array, field), encoding), categories)| {
                    let built;
                    let mut encoding = encoding.as_slice();
                    let array = match categories {
                        Some(c) => {
                            built = dictionary_of(array.as_ref(), c)?;
                            &built
                        }
                        None if encoding == [Encoding::RleDictionary] => {
                            match text_dictionary(array.as_ref()) {
                                Dictionary::Built(d) => {
                                    built = d;
                                    &built
                                }
                                Dictionary::NotWorth => {
                                    encoding = &[Encoding::Plain];
                                    array
                                }
                                Dictionary::NotText => array,
                            }
                        }
                        None => array,
                    };
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
            coded: &[],
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

    /// A coded column reads back as the texts of its codes (nulls included), written as a
    /// dictionary whose statistics cover only the categories the row group uses.
    #[test]
    fn coded_columns_read_back_as_their_texts() {
        let categories = ["address", "postcode", "name", "unresolved"];
        let codes: Vec<Option<u32>> = (0..600)
            .map(|i| (i % 7 != 6).then_some([2, 3, 1][i % 3]))
            .collect();
        let texts: Vec<Option<&str>> = codes
            .iter()
            .map(|c| c.map(|c| categories[c as usize]))
            .collect();
        let schema = Schema::from_iter([Field::new("method".into(), DataType::String)]);
        let config = StreamConfig {
            coded: &[Coded {
                name: "method",
                categories: &categories,
            }],
            ..StreamConfig::default()
        };
        let mut bytes = Vec::new();
        let mut w = stream_writer(&mut bytes, &schema, config).unwrap();
        w.write(&df!("method" => &codes).unwrap()).unwrap();
        w.writer.end(None).unwrap();
        let (_, meta) = w.writer.into_inner_and_metadata();
        let back = ParquetReader::new(std::io::Cursor::new(bytes))
            .finish()
            .unwrap();
        assert!(
            back.equals_missing(&df!("method" => &texts).unwrap()),
            "{back:?}"
        );
        assert!(encodings(&meta, 0).contains(&8));
        let stats = meta.row_groups[0].columns[0]
            .meta_data
            .as_ref()
            .unwrap()
            .statistics
            .as_ref()
            .unwrap();
        // `address` (code 0) is never used: the bounds are those of the texts written.
        assert_eq!(stats.min_value.as_deref(), Some(&b"name"[..]));
        assert_eq!(stats.max_value.as_deref(), Some(&b"unresolved"[..]));
        assert_eq!(stats.null_count, Some(85));
    }

    /// The pages of a text column as one `array_to_columns` call encodes it, for comparison.
    fn pages(array: &dyn Array, encoding: Encoding) -> String {
        let schema = Schema::from_iter([Field::new("t".into(), DataType::String)]);
        let w = stream_writer(Vec::new(), &schema, StreamConfig::default()).unwrap();
        let columns = array_to_columns(array, w.fields[0].clone(), w.options, &[encoding]).unwrap();
        let pages: Vec<_> = columns
            .into_iter()
            .flatten()
            .map(|page| page.unwrap())
            .collect();
        format!("{pages:?}")
    }

    proptest::proptest! {
        /// A text column's pages (dictionary, keys, statistics) are those polars' own
        /// dictionary builder writes, for columns clearly on one side of its three-quarters
        /// rule: few values repeated, or every value distinct (then plain beyond 128 rows).
        #[test]
        fn text_dictionaries_are_those_polars_writes(
            picks in proptest::collection::vec(proptest::option::weighted(0.95, 0u8..30), 0..700),
            distinct in proptest::bool::ANY,
        ) {
            let texts: Vec<Option<String>> = picks
                .iter()
                .enumerate()
                .map(|(i, p)| match (p, distinct) {
                    (Some(_), true) => Some(format!("分类号 {i}")),
                    (Some(p), false) => Some(format!("v{p}")),
                    (None, _) => None,
                })
                .collect();
            let array: Utf8ViewArray =
                polars_arrow::array::MutableBinaryViewArray::<str>::from_iter(
                    texts.iter().map(|t| t.as_deref()),
                )
                .freeze();
            let ours = match text_dictionary(&array) {
                Dictionary::Built(d) => pages(d.as_ref(), Encoding::RleDictionary),
                Dictionary::NotWorth => pages(&array, Encoding::Plain),
                Dictionary::NotText => unreachable!("a text column"),
            };
            proptest::prop_assert_eq!(ours, pages(&array, Encoding::RleDictionary));
        }
    }

    /// A code without a category is an error, not a wrong text.
    #[test]
    fn a_code_without_a_category_is_an_error() {
        let schema = Schema::from_iter([Field::new("kind".into(), DataType::String)]);
        let config = StreamConfig {
            coded: &[Coded {
                name: "kind",
                categories: &["a", "b"],
            }],
            ..StreamConfig::default()
        };
        let mut w = stream_writer(Vec::new(), &schema, config).unwrap();
        let err = w.write(&df!("kind" => [0u32, 2]).unwrap()).unwrap_err();
        assert!(err.to_string().contains("code 2"), "{err}");
    }
}
