"""Operations: readiness (is the flow moving?) and the gauges Prometheus scrapes."""
