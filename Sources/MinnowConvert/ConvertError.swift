/// Why a conversion failed: the ONNX node (name, op type, opset) or input at fault, and what.
public enum ConvertError: Error, CustomStringConvertible, Sendable {
    case io(path: String, reason: String)
    case notONNX(path: String, reason: String)
    case unsupportedOpset(domain: String, version: Int64, supported: ClosedRange<Int64>)
    case externalData(tensor: String, reason: String)
    case unsupportedOp(node: String, opType: String, opset: Int64)
    case invalidNode(node: String, opType: String, reason: String)
    case unsupportedTensor(name: String, reason: String)
    case calibration(String)
    case options(String)
    case model(String)

    public var description: String {
        switch self {
        case let .io(path, reason): return "\(path): \(reason)"
        case let .notONNX(path, reason): return "\(path): not a readable ONNX model (\(reason))"
        case let .unsupportedOpset(domain, version, supported):
            return "opset \(version) of domain '\(domain.isEmpty ? "ai.onnx" : domain)' is not supported (supported: \(supported.lowerBound)...\(supported.upperBound))"
        case let .externalData(tensor, reason):
            return "initializer '\(tensor)': external data: \(reason)"
        case let .unsupportedOp(node, opType, opset):
            return "node '\(node)': operator \(opType) (opset \(opset)) is not supported"
        case let .invalidNode(node, opType, reason): return "node '\(node)' (\(opType)): \(reason)"
        case let .unsupportedTensor(name, reason): return "tensor '\(name)': \(reason)"
        case let .calibration(reason): return "calibration: \(reason)"
        case let .options(reason): return "options: \(reason)"
        case let .model(reason): return "internal model check failed: \(reason)"
        }
    }
}
