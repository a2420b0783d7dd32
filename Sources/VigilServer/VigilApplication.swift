import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOCore
import Prometheus
import ServiceLifecycle
import VigilCore
import VigilIntake

/// Builds the HTTP router with every API.
public func buildRouter(_ deps: ServerDependencies) -> Router<BasicRequestContext> {
    let router = Router(context: BasicRequestContext.self)
    router.add(middleware: MetricsMiddleware())
    router.add(middleware: ErrorMiddleware(logger: deps.logger))
    IngestController(deps: deps).register(on: router)
    HECController(deps: deps).register(on: router)
    SearchController(deps: deps).register(on: router)
    AdminController(deps: deps).register(on: router)
    ElasticsearchController(deps: deps).register(on: router)
    RulesController(deps: deps).register(on: router)
    return router
}

/// Builds the HTTP application; `onServerRunning` receives the bound port.
public func buildApplication(
    _ deps: ServerDependencies, host: String, port: Int, onServerRunning: @escaping @Sendable (Int) async -> Void
) -> some ApplicationProtocol {
    Application(
        router: buildRouter(deps),
        configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "vigil"),
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) },
        logger: deps.logger
    )
}
