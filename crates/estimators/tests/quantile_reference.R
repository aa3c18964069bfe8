# Generates quantile_reference.json: reference fits from R quantreg for tests/quantile_reference.rs.
# Run from this directory with R 4.2.2 and quantreg 5.94:  Rscript quantile_reference.R
# The data sets are drawn here (set.seed) and written out with the results, so the Rust test
# reads both and never depends on R's random number generator.
suppressMessages(library(quantreg))
stopifnot(as.character(packageVersion("quantreg")) == "5.94")

num <- function(v) paste0("[", paste(sprintf("%.17g", v), collapse = ","), "]")
datasets <- list()
cases <- list()
add_data <- function(name, X, y) {
  rows <- paste(apply(X, 1, num), collapse = ",")
  datasets[[length(datasets) + 1]] <<- paste0(
    "\"", name, "\":{\"x\":[", rows, "],\"y\":", num(y), "}")
}
add_case <- function(data, X, y, tau, se) {
  fit <- suppressWarnings(rq(y ~ X - 1, tau = tau, method = "br"))
  s <- suppressWarnings(summary(fit, se = se, hs = TRUE))
  cases[[length(cases) + 1]] <<- paste0(
    "{\"data\":\"", data, "\",\"tau\":", sprintf("%.17g", tau), ",\"se\":\"", se, "\",",
    "\"coef\":", num(coef(fit)), ",\"std_error\":", num(s$coefficients[, 2]), ",",
    "\"objective\":", sprintf("%.17g", fit$rho), "}")
}

set.seed(20240611)
# 1. continuous regressors, heteroskedastic errors
n <- 60
x1 <- rnorm(n); x2 <- runif(n)
y <- 1 + x1 + 0.5 * x2 + (1 + 0.5 * x2) * rnorm(n)
X <- cbind(1, x1, x2)
add_data("continuous", X, y)
for (tau in c(0.1, 0.33, 0.5, 0.9)) for (se in c("iid", "nid", "ker"))
  add_case("continuous", X, y, tau, se)

# 2. small integer data: many ties, degenerate vertices, non-unique solutions at tau = j/n
n <- 40
x <- sample(1:5, n, replace = TRUE)
y <- pmax(0, x + sample(-3:3, n, replace = TRUE))
X <- cbind(1, x)
add_data("integer", X, y)
for (tau in c(0.25, 0.5, 0.75)) for (se in c("iid", "nid", "ker"))
  add_case("integer", X, y, tau, se)

# 3. a dummy, a count and a skewed regressor, n = 500
n <- 500
d <- rbinom(n, 1, 0.3); cnt <- rpois(n, 3); z <- rexp(n)
y <- 2 + 0.7 * d - 0.2 * cnt + z + rexp(n) * (1 + z)
X <- cbind(1, d, cnt, z)
add_data("mixed", X, y)
for (tau in c(0.2, 0.5, 0.8)) for (se in c("iid", "nid", "ker"))
  add_case("mixed", X, y, tau, se)

# 4. intercept only: the sample quantile, non-unique at tau = 0.5 with n even
y <- c(5, 1, 4, 2, 8, 3, 9, 7, 6, 10)
add_data("intercept_only", matrix(1, length(y), 1), y)
add_case("intercept_only", matrix(1, length(y), 1), y, 0.5, "nid")
add_case("intercept_only", matrix(1, length(y), 1), y, 0.35, "iid")

# 5. heavy tails and gross outliers
n <- 80
x <- rnorm(n)
y <- 3 - 2 * x + rt(n, df = 1.5)
y[1:4] <- y[1:4] + 1000
X <- cbind(1, x)
add_data("outliers", X, y)
for (tau in c(0.05, 0.5, 0.95)) for (se in c("iid", "nid", "ker"))
  add_case("outliers", X, y, tau, se)

writeLines(paste0("{\"source\":\"R ", paste(R.version$major, R.version$minor, sep = "."),
  ", quantreg ", packageVersion("quantreg"), ": rq(method = 'br'); summary.rq(se, hs = TRUE)\",\n",
  "\"datasets\":{\n", paste(unlist(datasets), collapse = ",\n"), "},\n",
  "\"cases\":[\n", paste(unlist(cases), collapse = ",\n"), "\n]}"), "quantile_reference.json")
