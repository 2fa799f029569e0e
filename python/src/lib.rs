use pyo3::prelude::*;

#[pymodule]
fn _mlv(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
