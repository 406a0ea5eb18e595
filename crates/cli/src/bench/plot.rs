//! `--plot PATH.svg`: round-trip p50 and throughput against message size, one line per
//! transport, both axes logarithmic. Text is drawn as SVG `<text>`, so no font files are
//! needed.

use std::error::Error;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::report::Row;
use super::units::{format_bandwidth, format_ns, format_size};

/// Draws the two charts into an SVG file at `path`.
///
/// # Errors
/// Drawing or writing the file.
pub(crate) fn write_svg(rows: &[Row], path: &Path) -> Result<(), Box<dyn Error>> {
    let root = SVGBackend::new(path, (960, 1040)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(520);
    // One colour per transport, the same in both charts.
    let mut transports: Vec<&'static str> = Vec::new();
    for r in rows {
        if !transports.contains(&r.transport) {
            transports.push(r.transport);
        }
    }
    let latency = Panel {
        title: "Ping-pong ROUND TRIP, p50 (lower is better)",
        y_desc: "round trip p50",
        value: |r: &Row| r.latency().map(|l| l.p50_ns as f64),
        y_label: |y: &f64| axis_label(&format_ns(y.round() as u64)),
    };
    let throughput = Panel {
        title: "Throughput, one way (higher is better)",
        y_desc: "bytes per second",
        value: |r: &Row| r.rate().map(|r| r.bytes_per_sec),
        y_label: |y: &f64| axis_label(&format_bandwidth(*y)),
    };
    latency.draw(&top, rows, &transports)?;
    throughput.draw(&bottom, rows, &transports)?;
    root.present()?;
    Ok(())
}

/// `1.00 µs` reads as `1 µs` on an axis, where the ticks are round numbers.
fn axis_label(text: &str) -> String {
    text.replace(".00 ", " ").replace(".0 ", " ")
}

/// One chart: which value of a row it plots and how its axis reads.
struct Panel {
    title: &'static str,
    y_desc: &'static str,
    value: fn(&Row) -> Option<f64>,
    y_label: fn(&f64) -> String,
}

impl Panel {
    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        rows: &[Row],
        transports: &[&'static str],
    ) -> Result<(), Box<dyn Error>>
    where
        DB::ErrorType: 'static,
    {
        let series: Vec<(usize, Vec<(f64, f64)>)> = transports
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let points = rows
                    .iter()
                    .filter(|r| r.transport == *t)
                    .filter_map(|r| {
                        (self.value)(r)
                            .filter(|v| *v > 0.0)
                            .map(|v| (r.size as f64, v))
                    })
                    .collect();
                (i, points)
            })
            .filter(|(_, p): &(usize, Vec<_>)| !p.is_empty())
            .collect();
        let all = || series.iter().flat_map(|(_, p)| p.iter());
        let Some((x_lo, x_hi, y_lo, y_hi)) =
            all().fold(None, |acc: Option<(f64, f64, f64, f64)>, &(x, y)| {
                Some(acc.map_or((x, x, y, y), |(a, b, c, d)| {
                    (a.min(x), b.max(x), c.min(y), d.max(y))
                }))
            })
        else {
            area.titled(
                &format!("{}: no measurements", self.title),
                ("sans-serif", 20),
            )?;
            return Ok(());
        };
        let mut chart = ChartBuilder::on(area)
            .caption(self.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(90)
            .build_cartesian_2d(
                (x_lo / 1.5..x_hi * 1.5).log_scale().base(2.0),
                (y_lo / 2.0..y_hi * 2.0).log_scale(),
            )?;
        chart
            .configure_mesh()
            .x_desc("message size")
            .y_desc(self.y_desc)
            .x_label_formatter(&|x| format_size(x.round() as usize))
            .y_label_formatter(&self.y_label)
            .draw()?;
        for (i, points) in &series {
            let color = Palette99::pick(*i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))?
                .label(transports[*i])
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    }
}
