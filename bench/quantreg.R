#!/usr/bin/env Rscript
# Median-regression benchmark with R's quantreg (competitor for `repro`'s QR estimator).
#
# Model: rq(y ~ x1 + ... + x9, tau = 0.5, method = M), then summary(fit, se = "nid"),
#        for M in "fn" (Frisch-Newton interior point) and "pfn" (Frisch-Newton with
#        Portnoy-Koenker preprocessing).
#
# Usage:
#   Rscript bench/quantreg.R [DATA_CSV] [REPEAT]
#     DATA_CSV  default bench/data/qr_100k.csv  (R reads CSV: Debian has no R arrow package)
#     REPEAT    timed runs per method (default 3); `seconds` is their median
#
# What is timed (wall clock, proc.time()["elapsed"]):
#   load_seconds  reading the CSV (data.table::fread if installed, else read.csv); reported only
#   fit_seconds   rq(...) alone
#   se_seconds    summary(fit, se = "nid") alone (Hendricks-Koenker sandwich; refits at
#                 tau +/- h with the Hall-Sheather bandwidth)
#   seconds       fit + se of one run, median over REPEAT runs
#   cpu_seconds   CPU time (user + sys of the R process) of fit + se, median over REPEAT runs
# The model formula and model frame are built inside rq(), so they are part of fit_seconds.
#
# Prints one JSON line per method:
#   {"tool": "R quantreg", "task": "<data stem>", "method": "fn"|"pfn", "seconds": ...,
#    "coefficients": {...}, "se": {...}, ...}
# (pfn may warn "Too many fixups: doubling m" on stderr; that is its normal preprocessing
#  fallback, not an error.)
suppressPackageStartupMessages(library(quantreg))

args <- commandArgs(trailingOnly = TRUE)
script_dir <- local({
  a <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
  if (length(a)) dirname(normalizePath(sub("^--file=", "", a[1]))) else "bench"
})
path <- if (length(args) >= 1) args[1] else file.path(script_dir, "data", "qr_100k.csv")
reps <- if (length(args) >= 2) as.integer(args[2]) else 3L

now <- function() proc.time()[["elapsed"]]
cpu <- function() { p <- proc.time(); p[["user.self"]] + p[["sys.self"]] }

t0 <- now()
if (requireNamespace("data.table", quietly = TRUE)) {
  df <- as.data.frame(data.table::fread(path, showProgress = FALSE))
  reader <- "data.table::fread"
} else {
  df <- read.csv(path)
  reader <- "read.csv"
}
load_s <- now() - t0

xs <- grep("^x[0-9]+$", names(df), value = TRUE)
fml <- as.formula(paste("y ~", paste(xs, collapse = " + ")))

num <- function(v) sprintf("%.17g", v)
sec <- function(v) sprintf("%.6g", v)
jmap <- function(v) {
  nm <- sub("^\\(Intercept\\)$", "Intercept", names(v))
  paste0("{", paste(sprintf("\"%s\": %s", nm, num(v)), collapse = ", "), "}")
}
jvec <- function(v) paste0("[", paste(sec(v), collapse = ", "), "]")

stem <- sub("\\.[^.]*$", "", basename(path))
for (method in c("fn", "pfn")) {
  fit_t <- numeric(0); se_t <- numeric(0); cpu_t <- numeric(0)
  for (r in seq_len(reps)) {
    c0 <- cpu()
    t0 <- now()
    fit <- rq(fml, tau = 0.5, data = df, method = method)
    t1 <- now()
    s <- summary(fit, se = "nid")
    t2 <- now()
    cpu_t <- c(cpu_t, cpu() - c0)
    fit_t <- c(fit_t, t1 - t0); se_t <- c(se_t, t2 - t1)
  }
  tot <- fit_t + se_t
  co <- s$coefficients
  line <- paste0(
    "{\"tool\": \"R quantreg\", \"task\": \"", stem, "\"",
    ", \"seconds\": ", sec(median(tot)),
    ", \"coefficients\": ", jmap(co[, 1]),
    ", \"se\": ", jmap(co[, 2]),
    ", \"se_method\": \"nid\"",
    ", \"method\": \"", method, "\"",
    ", \"tau\": 0.5",
    ", \"nobs\": ", nrow(df),
    ", \"load_seconds\": ", sec(load_s),
    ", \"reader\": \"", reader, "\"",
    ", \"fit_seconds\": ", sec(median(fit_t)),
    ", \"se_seconds\": ", sec(median(se_t)),
    ", \"runs_seconds\": ", jvec(tot),
    ", \"cpu_seconds\": ", sec(median(cpu_t)),
    ", \"version\": \"", as.character(packageVersion("quantreg")), "\"",
    ", \"r\": \"", as.character(getRversion()), "\"}"
  )
  cat(line, "\n", sep = "")
}
