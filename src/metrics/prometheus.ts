import type { Effect } from "effect"
import { PrometheusMetrics } from "effect/observability"

/** The content type of Prometheus text exposition format 0.0.4. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

/**
 * Every metric in the current `Metric.MetricRegistry` (the process-global one unless the
 * caller provides another), in Prometheus text exposition format 0.0.4.
 *
 * This is effect's own `PrometheusMetrics.format`, checked against the format for what the
 * transport uses: one `# HELP` (when the metric has a description) and one `# TYPE` line per
 * metric name with all of its labelled series grouped under them; label values escaped
 * (`\\`, `\"`, `\n`); histograms as cumulative `_bucket{le="..."}` series ending in
 * `le="+Inf"` (equal to `_count`), then `_sum` and `_count`; `Metric.timer`'s own `Infinity`
 * bound and its `time_unit` attribute are left out. test/metrics-endpoint.test.ts parses the
 * output and pins these properties, so an upstream change to the formatter shows up there.
 */
export const renderPrometheus: Effect.Effect<string> = PrometheusMetrics.format()
